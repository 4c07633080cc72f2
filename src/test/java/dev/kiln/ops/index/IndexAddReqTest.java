package dev.kiln.ops.index;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * grad_req=add: two backward calls accumulate exactly twice the grad_req=write gradient, in
 * float32 and float64, for every case of {@link IndexGradTest} (the backward kernels' kAddTo paths).
 */
@ExtendWith(NoLeaks.class)
class IndexAddReqTest {

    static Map<String, double[]> grads(IndexGradTest.G c, GradReq req, int calls, DType type) {
        Symbol sym = c.sym();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        Map<String, double[]> values = new LinkedHashMap<>();
        for (String a : sym.listArguments()) {
            long[] s = c.shapes().get(a);
            shapes.put(a, s);
            types.put(a, type);
            reqs.put(a, c.wrt().contains(a) ? req : GradReq.NULL);
            values.put(a, c.in().get(a));
        }
        try (Executor ex = Executor.simpleBind(sym, Context.cpu(), shapes, types, reqs, new Executor.Options().optSeed(7))) {
            values.forEach((k, v) -> ex.argDict().get(k).set(v));
            ex.forward(true);
            List<NDArray> heads = new ArrayList<>();
            try {
                Random r = new Random(5);
                for (NDArray o : ex.outputs()) {
                    NDArray h = NDArray.zeros(o.shape(), o.dtype(), Context.cpu());
                    heads.add(h);
                    double[] v = new double[(int) o.size()];
                    for (int i = 0; i < v.length; i++) {
                        v[i] = Math.round(r.nextGaussian() * 64) / 64.0;
                    }
                    h.set(v);
                }
                for (int i = 0; i < calls; i++) {
                    ex.backward(heads.toArray(new NDArray[0]));
                }
            } finally {
                heads.forEach(NDArray::close);
            }
            Map<String, double[]> g = new LinkedHashMap<>();
            for (String x : c.wrt()) {
                g.put(x, ex.gradDict().get(x).toDoubleArray());
            }
            return g;
        }
    }

    @TestFactory
    Stream<DynamicTest> addAccumulates() {
        return IndexGradTest.cases().stream().flatMap(c -> Stream.of(DType.FLOAT64, DType.FLOAT32)
                .map(t -> DynamicTest.dynamicTest(c.label() + " " + t, () -> {
                    Map<String, double[]> once = grads(c, GradReq.WRITE, 1, t);
                    Map<String, double[]> twice = grads(c, GradReq.ADD, 2, t);
                    for (String x : c.wrt()) {
                        double[] e = once.get(x).clone();
                        for (int i = 0; i < e.length; i++) {
                            e[i] *= 2;
                        }
                        GradCheck.assertClose(e, twice.get(x), 1e-5, 1e-6, "grad_req=add d/d" + x + " " + t);
                    }
                })));
    }
}
