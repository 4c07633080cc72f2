package dev.kiln.ops.pool;

import static dev.kiln.ops.pool.PoolTesting.assertInvokeFails;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Crop (legacy): forward against MXNet 1.9.1, float64 gradients, errors. */
@ExtendWith(NoLeaks.class)
class CropTest {

    @Test
    void forwardMatchesMxnet() {
        long[] d = s(2, 3, 7, 8);
        PoolTesting.oracle("Crop", a("num_args", "1", "h_w", "(3, 4)"), d);
        PoolTesting.oracle("Crop", a("num_args", "1", "h_w", "(3, 4)", "offset", "(2, 1)"), d);
        PoolTesting.oracle("Crop", a("num_args", "1", "h_w", "(7, 8)"), d);
        PoolTesting.oracle("Crop", a("num_args", "1", "h_w", "(2, 5)", "offset", "(5, 3)"), d);
        PoolTesting.oracle("Crop", a("num_args", "1", "h_w", "(4, 3)", "center_crop", "True"), d);
        PoolTesting.oracle("Crop", a("num_args", "1", "h_w", "(4, 3)", "center_crop", "True", "offset", "(1, 1)"), d);
        PoolTesting.oracle("Crop", a("num_args", "2"), d, s(1, 1, 3, 5));
        PoolTesting.oracle("Crop", a("num_args", "2", "offset", "(1, 2)"), d, s(2, 3, 5, 5));
        PoolTesting.oracle("Crop", a("num_args", "2", "center_crop", "True"), d, s(4, 2, 2, 3));
        PoolTesting.oracle("Crop", a("num_args", "1", "h_w", "(30, 30)", "center_crop", "True"), s(8, 16, 32, 32)); // threads
    }

    @Test
    void namesAndShapes() {
        Symbol c = Symbol.create("Crop", "crop", a("num_args", "2"), null, Symbol.variable("x"), Symbol.variable("like"));
        assertEquals(List.of("x", "like"), c.listArguments());
        assertArrayEquals(s(2, 3, 3, 5), PoolTesting.outShape("Crop", a("num_args", "2"), s(2, 3, 7, 8), s(1, 1, 3, 5)));
        assertEquals(List.of("crop_arg0"), Symbol.create("Crop", "crop", a("num_args", "1", "h_w", "(1, 1)"), null).listArguments());
    }

    @Test
    void numericGradient() {
        GradCheck.check(Symbol.create("Crop", "crop", a("num_args", "1", "h_w", "(2, 3)", "offset", "(1, 1)"), null,
                Symbol.variable("x")), new GradCheck.Inputs().random("x", s(2, 2, 4, 5), -1, 1, 1), List.of("x"), 1e-6, 1e-6, 1e-8);
        GradCheck.check(Symbol.create("Crop", "crop", a("num_args", "2", "center_crop", "True"), null, Symbol.variable("x"),
                Symbol.variable("like")), new GradCheck.Inputs().random("x", s(1, 2, 5, 5), -1, 1, 2).random("like", s(1, 1, 2, 3), -1, 1, 3),
                List.of("x", "like"), 1e-6, 1e-6, 1e-8);
    }

    @Test
    void gradientMatchesMxnet() {
        PoolTesting.oracleGrad("Crop", a("num_args", "1", "h_w", "(3, 4)", "offset", "(2, 1)"), -2, 2, s(2, 3, 7, 8));
        PoolTesting.oracleGrad("Crop", a("num_args", "2", "center_crop", "True"), -2, 2, s(2, 3, 7, 8), s(1, 1, 4, 3));
    }

    @Test
    void errors() {
        long[][] d = {s(2, 3, 7, 8)};
        assertInvokeFails("Crop", a("num_args", "1"), d, "h_w[0]) should be set");
        assertInvokeFails("Crop", a("num_args", "1", "h_w", "(3, 0)"), d, "h_w[1]) should be set");
        assertInvokeFails("Crop", a("num_args", "1", "h_w", "(8, 2)"), d, "data_h must be larger than crop_h");
        assertInvokeFails("Crop", a("num_args", "1", "h_w", "(3, 4)", "offset", "(5, 0)"), d, "exceeds the data shape");
        assertInvokeFails("Crop", a("num_args", "1", "h_w", "(3, 4)", "offset", "(-1, 0)"), d, "exceeds the data shape");
        assertInvokeFails("Crop", a("num_args", "1", "h_w", "(3, 4)"), new long[][] {s(3, 7, 8)}, "4D");
        assertInvokeFails("Crop", a("num_args", "2"), new long[][] {s(2, 3, 7, 8), s(3, 5)}, "second argument should be 4D");
        assertInvokeFails("Crop", a("num_args", "3", "h_w", "(3, 4)"), d, "num_args");
    }
}
