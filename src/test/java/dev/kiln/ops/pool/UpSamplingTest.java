package dev.kiln.ops.pool;

import static dev.kiln.ops.pool.PoolTesting.assertInvokeFails;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** UpSampling (nearest): forward against MXNet 1.9.1, float64 gradients, errors. */
@ExtendWith(NoLeaks.class)
class UpSamplingTest {

    @Test
    void forwardMatchesMxnet() {
        for (String sc : List.of("1", "2", "3")) {
            PoolTesting.oracle("UpSampling", a("scale", sc, "sample_type", "nearest", "num_args", "1"), s(2, 3, 4, 5));
            PoolTesting.oracle("UpSampling", a("scale", sc, "sample_type", "nearest", "num_args", "1", "multi_input_mode", "sum"),
                    s(1, 2, 3, 3));
        }
        PoolTesting.oracle("UpSampling", a("scale", "2", "sample_type", "nearest", "num_args", "2"), s(2, 3, 4, 5), s(2, 2, 8, 10));
        PoolTesting.oracle("UpSampling", a("scale", "2", "sample_type", "nearest", "num_args", "3", "multi_input_mode", "concat"),
                s(1, 2, 3, 3), s(1, 1, 6, 6), s(1, 3, 2, 2));
        PoolTesting.oracle("UpSampling", a("scale", "2", "sample_type", "nearest", "num_args", "2", "multi_input_mode", "sum"),
                s(2, 3, 4, 4), s(2, 3, 2, 2));
        PoolTesting.oracle("UpSampling", a("scale", "3", "sample_type", "nearest", "num_args", "3", "multi_input_mode", "sum",
                "num_filter", "4", "workspace", "256"), s(1, 4, 2, 2), s(1, 4, 3, 3), s(1, 4, 6, 6));
        PoolTesting.oracle("UpSampling", a("scale", "2", "sample_type", "nearest", "num_args", "1"), s(8, 16, 32, 32)); // threads
    }

    static Symbol up(Map<String, String> attrs, int n) {
        Symbol[] in = new Symbol[n];
        for (int i = 0; i < n; i++) {
            in[i] = Symbol.variable("x" + i);
        }
        return Symbol.create("UpSampling", "up", attrs, null, in);
    }

    @Test
    void argumentNames() {
        Symbol s = Symbol.create("UpSampling", "up", a("scale", "2", "sample_type", "nearest", "num_args", "2"), null);
        assertEquals(List.of("up_arg0", "up_arg1"), s.listArguments());
        // num_args defaults to the number of positional inputs, as MXNet's key_var_num_args
        Symbol t = Symbol.create("UpSampling", "up", a("scale", "2", "sample_type", "nearest"), null, Symbol.variable("a"),
                Symbol.variable("b"), Symbol.variable("c"));
        assertEquals(List.of("a", "b", "c"), t.listArguments());
    }

    @Test
    void numericGradient() {
        GradCheck.check(up(a("scale", "2", "sample_type", "nearest", "num_args", "1"), 1),
                new GradCheck.Inputs().random("x0", s(2, 2, 2, 3), -1, 1, 1), List.of("x0"), 1e-6, 1e-6, 1e-8);
        GradCheck.check(up(a("scale", "2", "sample_type", "nearest", "num_args", "2"), 2),
                new GradCheck.Inputs().random("x0", s(1, 2, 2, 2), -1, 1, 2).random("x1", s(1, 1, 4, 4), -1, 1, 3),
                List.of("x0", "x1"), 1e-6, 1e-6, 1e-8);
        GradCheck.check(up(a("scale", "3", "sample_type", "nearest", "num_args", "2", "multi_input_mode", "sum"), 2),
                new GradCheck.Inputs().random("x0", s(1, 2, 1, 2), -1, 1, 4).random("x1", s(1, 2, 3, 6), -1, 1, 5),
                List.of("x0", "x1"), 1e-6, 1e-6, 1e-8);
    }

    @Test
    void shapes() {
        assertArrayEquals(s(2, 5, 8, 10), PoolTesting.outShape("UpSampling",
                a("scale", "2", "sample_type", "nearest", "num_args", "2"), s(2, 3, 4, 5), s(2, 2, 8, 10)));
    }

    @Test
    void gradientMatchesMxnet() {
        PoolTesting.oracleGrad("UpSampling", a("scale", "2", "sample_type", "nearest", "num_args", "1"), -2, 2, s(2, 3, 4, 5));
        PoolTesting.oracleGrad("UpSampling", a("scale", "2", "sample_type", "nearest", "num_args", "2"), -2, 2, s(2, 3, 4, 5),
                s(2, 2, 8, 10));
        PoolTesting.oracleGrad("UpSampling", a("scale", "3", "sample_type", "nearest", "num_args", "3", "multi_input_mode", "sum"),
                -2, 2, s(1, 4, 2, 2), s(1, 4, 3, 3), s(1, 4, 6, 6));
    }

    @Test
    void errors() {
        assertInvokeFails("UpSampling", a("scale", "2", "sample_type", "bilinear", "num_args", "2", "num_filter", "3"),
                new long[][] {s(1, 3, 4, 4), s(3, 1, 4, 4)}, "bilinear", "not supported");
        OpTesting.assertThrowsMessage(() -> up(a("scale", "2", "sample_type", "bilinear", "num_args", "2"), 2).inferShape(
                Map.of("x0", s(1, 3, 4, 4), "x1", s(3, 1, 4, 4))), "bilinear", "not supported");
        assertInvokeFails("UpSampling", a("scale", "2", "sample_type", "nearest", "num_args", "1"), new long[][] {s(3, 4, 4)}, "4D");
        assertInvokeFails("UpSampling", a("scale", "2", "sample_type", "nearest", "num_args", "2"),
                new long[][] {s(1, 1, 4, 4), s(1, 1, 3, 3)}, "cannot be upsampled");
        assertInvokeFails("UpSampling", a("scale", "2", "sample_type", "nearest", "num_args", "2", "multi_input_mode", "sum"),
                new long[][] {s(1, 2, 4, 4), s(1, 3, 4, 4)}, "same for sum mode");
        assertInvokeFails("UpSampling", a("scale", "0", "sample_type", "nearest", "num_args", "1"), new long[][] {s(1, 1, 2, 2)}, "scale");
        assertInvokeFails("UpSampling", a("scale", "2", "num_args", "1"), new long[][] {s(1, 1, 2, 2)}, "sample_type", "missing");
        assertInvokeFails("UpSampling", a("scale", "2", "sample_type", "cubic", "num_args", "1"), new long[][] {s(1, 1, 2, 2)}, "cubic");
    }
}
