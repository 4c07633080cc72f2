package dev.kiln.ops.shape;

import static dev.kiln.ops.shape.ShapeFixtures.BOTH;
import static dev.kiln.ops.shape.ShapeFixtures.assertOut;
import static dev.kiln.ops.shape.ShapeFixtures.bind;
import static dev.kiln.ops.shape.ShapeFixtures.outputs;
import static dev.kiln.ops.shape.ShapeFixtures.randomValues;
import static dev.kiln.ops.shape.ShapeFixtures.shape;
import static dev.kiln.testutil.OpTesting.shapes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.executor.MemoryReport;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Identity in-place safety (spec 1.6.3): an identity op (Flatten, Reshape, expand_dims,
 * identity, _copy, BlockGrad) aliases an entry that still has another reader; a later genuinely
 * in-place op (relu) on the alias must not clobber what the other reader (x*2) sees.
 */
@ExtendWith(NoLeaks.class)
class IdentityInplaceTest {

    private static final long[] DATA = shape(2, 3, 4);
    private static final int HIDDEN = 6;

    private static Symbol alias(String op, Symbol x) {
        switch (op) {
            case "Flatten": return Symbol.flatten("alias", x);
            case "Reshape": return Symbol.reshape("alias", x, 0, -1);
            case "expand_dims": return Symbol.expandDims("alias", x, 1);
            case "identity": return Symbol.identity("alias", x);
            case "_copy": return Symbol.create("_copy", "alias", null, null, x);
            case "BlockGrad": return Symbol.blockGrad("alias", x);
            default: throw new IllegalArgumentException(op);
        }
    }

    /** x = FC(data) [2,3,6] (flatten=False); y = relu(alias(x)); z = x * 2; outputs (y, z) or (z, y). */
    private static Symbol net(String op, boolean relu_first) {
        Symbol x = Symbol.fullyConnected("fc", Symbol.variable("data"), HIDDEN, false, false);
        Symbol y = Symbol.activation("relu", alias(op, x), "relu");
        Symbol z = x.mul(2.0);
        return relu_first ? Symbol.group(y, z) : Symbol.group(z, y);
    }

    private static double[] fcRef(Map<String, double[]> v) {
        double[] d = v.get("data");
        double[] w = v.get("fc_weight");
        double[] b = v.get("fc_bias");
        int rows = 6;
        int k = 4;
        double[] out = new double[rows * HIDDEN];
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < HIDDEN; h++) {
                double s = b[h];
                for (int j = 0; j < k; j++) {
                    s += d[r * k + j] * w[h * k + j];
                }
                out[r * HIDDEN + h] = s;
            }
        }
        return out;
    }

    private static long[] aliasShape(String op) {
        switch (op) {
            case "Flatten":
            case "Reshape": return shape(2, 18);
            case "expand_dims": return shape(2, 1, 3, 6);
            default: return shape(2, 3, 6);
        }
    }

    /** Random values; the bias is offset by 2^-13 so no FC output sits on relu's kink (inputs are on a 2^-6 grid). */
    private static Map<String, double[]> values(Map<String, long[]> s) {
        Map<String, double[]> v = randomValues(s);
        double[] b = v.get("fc_bias");
        for (int i = 0; i < b.length; i++) {
            b[i] += 1.0 / 8192;
        }
        return v;
    }

    private static String storage(MemoryReport r, String entry) {
        Map<String, Object> e = r.entry(entry);
        assertNotNull(e, entry + " in " + r.json());
        return String.valueOf(e.get("storage"));
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"Flatten", "Reshape", "expand_dims", "identity", "_copy", "BlockGrad"})
    void inplaceOnAnAliasDoesNotClobberTheOtherReader(String op) {
        Map<String, long[]> s = shapes("data", DATA, "fc_weight", shape(HIDDEN, 4), "fc_bias", shape(HIDDEN));
        Map<String, double[]> v = values(s);
        double[] fc = fcRef(v);
        double[] relu = fc.clone();
        double[] twice = fc.clone();
        int negatives = 0;
        for (int i = 0; i < fc.length; i++) {
            negatives += fc[i] < 0 ? 1 : 0;
            relu[i] = Math.max(0, fc[i]);
            twice[i] = 2 * fc[i];
        }
        // the data must make relu change something, or a clobbered x would go unnoticed
        assertNotEquals(0, negatives);
        for (boolean reluFirst : new boolean[] {true, false}) {
            Symbol sym = net(op, reluFirst);
            int iy = reluFirst ? 0 : 1;
            int iz = 1 - iy;
            for (DType t : BOTH) {
                for (boolean train : new boolean[] {false, true}) {
                    Map<String, GradReq> reqs = new LinkedHashMap<>();
                    if (train) {
                        reqs.put("fc_weight", GradReq.WRITE);
                        reqs.put("fc_bias", GradReq.WRITE);
                    }
                    try (Executor ex = bind(sym, s, v, t, reqs, null)) {
                        ex.forward(train);
                        ExecTesting.Out out = outputs(ex);
                        String what = op + " relu_first=" + reluFirst + " train=" + train;
                        assertOut(out, iy, aliasShape(op), relu, t, what + " relu(alias(x))");
                        assertOut(out, iz, shape(2, 3, HIDDEN), twice, t, what + " x*2");
                        MemoryReport r = ex.memoryReport();
                        // the alias shares x's block (identity in place) ...
                        String sx = storage(r, "fc_output");
                        assertEquals(sx, storage(r, "alias_output"), op + " should alias x: " + r.json());
                        // ... and relu, though in-place-capable, does not write into it while x*2 still reads it
                        if (reluFirst) {
                            assertNotEquals(sx, storage(r, "relu_output"), "relu clobbers x: " + r.json());
                        }
                    }
                }
            }
        }
        // and the whole thing differentiates correctly (BlockGrad cuts the relu path: checked elsewhere)
        if (!op.equals("BlockGrad")) {
            GradCheck.check(net(op, true), ShapeFixtures.inputs(s, v), List.of("data", "fc_weight", "fc_bias"), 1e-5, 1e-6,
                    1e-8);
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"Flatten", "Reshape", "identity"})
    void aliasChainWithSoleReaderRunsInPlace(String op) {
        // with no other reader of x, relu may (and should) reuse x's block; values stay right
        Function<Symbol, Symbol> build = x -> Symbol.activation("relu", alias(op, x), "relu");
        Symbol sym = build.apply(Symbol.fullyConnected("fc", Symbol.variable("data"), HIDDEN, false, false));
        Map<String, long[]> s = shapes("data", DATA, "fc_weight", shape(HIDDEN, 4), "fc_bias", shape(HIDDEN));
        Map<String, double[]> v = values(s);
        double[] relu = fcRef(v);
        for (int i = 0; i < relu.length; i++) {
            relu[i] = Math.max(0, relu[i]);
        }
        try (Executor ex = bind(sym, s, v, DType.FLOAT32, Map.of(), null)) {
            ex.forward(false);
            assertOut(outputs(ex), 0, aliasShape(op), relu, DType.FLOAT32, op);
            MemoryReport r = ex.memoryReport();
            assertEquals(storage(r, "fc_output"), storage(r, "relu_output"), r.json());
        }
    }
}
