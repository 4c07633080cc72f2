package dev.kiln.ops.index;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.LinkedHashMap;
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
        Map<String, double[]> values = new LinkedHashMap<>();
        for (String a : sym.listArguments()) {
            long[] s = c.shapes().get(a);
            shapes.put(a, s);
            values.put(a, c.in().get(a));
        }
        Random r = new Random(5);
        return ExecTesting.grads(sym, shapes, values, c.wrt(), req, calls, type, (k, s) -> {
            double[] v = new double[OpTesting.size(s)];
            for (int i = 0; i < v.length; i++) {
                v[i] = Math.round(r.nextGaussian() * 64) / 64.0;
            }
            return v;
        }, new Executor.Options().optSeed(7));
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
