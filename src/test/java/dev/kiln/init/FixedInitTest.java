package dev.kiln.init;

import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;

import static dev.kiln.init.InitTesting.all;
import static dev.kiln.init.InitTesting.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Zero, One, Constant, Bilinear, LSTMBias. */
@ExtendWith(NoLeaks.class)
class FixedInitTest {

    @Test
    void zeroOneConstant() {
        assertTrue(all(run(new Zero(), "fc_weight", 3, 4), 0.0));
        assertTrue(all(run(new One(), "fc_weight", 3, 4), 1.0));
        assertTrue(all(run(new Constant(-2.5), "fc_weight", 5), -2.5));
        assertTrue(all(run(new Constant(42), "fc_weight", 5, 5), 42.0));
    }

    @Test
    void bilinearMatchesMxnetsUnitTest() {
        // test_bilinear_init: 1x1x4x4 -> outer([1/4, 3/4, 3/4, 1/4])
        double[] b = {0.25, 0.75, 0.75, 0.25};
        double[] expect = new double[16];
        for (int y = 0; y < 4; y++) {
            for (int x = 0; x < 4; x++) {
                expect[y * 4 + x] = b[y] * b[x];
            }
        }
        assertArrayEquals(expect, run(new Bilinear(), "up_weight", 1, 1, 4, 4), 1e-7);
    }

    @Test
    void bilinearOddWidthAndRepeatedChannels() {
        // W = 3: f = 2, c = (4 - 1 - 0) / 4 = 0.75; columns: 1-|0-.75|=.25, 1-|.5-.75|=.75, 1-|1-.75|=.75
        double[] w = run(new Bilinear(), "up_weight", 2, 1, 3, 3);
        double[] col = {0.25, 0.75, 0.75};
        for (int n = 0; n < 2; n++) {
            for (int y = 0; y < 3; y++) {
                for (int x = 0; x < 3; x++) {
                    assertEquals(col[y] * col[x], w[n * 9 + y * 3 + x], 1e-7);
                }
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(new Bilinear(), "up_weight", 4, 4));
        assertTrue(e.getMessage().contains("up_weight") && e.getMessage().contains("(4, 4)"), e.getMessage());
    }

    @Test
    void lstmBiasSetsOnlyTheForgetGate() {
        // LSTM cells name it in the bias variable's __init__; a plain *_bias name would get the bias rule (0)
        double[] v = run(new Zero(), "lstm_i2h_bias", java.util.Map.of("__init__", "[\"lstmbias\", {}]"), 12);
        assertArrayEquals(new double[] {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, v);
        assertTrue(all(run(new LSTMBias(), "lstm_i2h_bias", 12), 0.0));
        assertArrayEquals(new double[] {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, run(new LSTMBias(), "lstm_i2h_weight", 12));
        double[] w = run(new LSTMBias(2.5), "x", java.util.Map.of("__init__", new LSTMBias(2.5).dumps()), 8, 2);
        for (int i = 0; i < 16; i++) {
            assertEquals(i >= 4 && i < 8 ? 2.5 : 0.0, w[i], "element " + i);
        }
        // a length not divisible by 4: H = floor(len / 4)
        assertArrayEquals(new double[] {0, 1, 0, 0, 0}, run(new LSTMBias(), "b_weight", 5));
    }

    @Test
    void constantArrayValuesBroadcast() {
        assertArrayEquals(new double[] {1, 2, 3, 4, 5, 6}, run(new Constant(new double[] {1, 2, 3, 4, 5, 6}, 2, 3), "w_weight", 2, 3));
        // a row broadcast over rows, a column over columns, leading ones dropped
        assertArrayEquals(new double[] {1, 2, 3, 1, 2, 3}, run(new Constant(new double[] {1, 2, 3}, 3), "w_weight", 2, 3));
        assertArrayEquals(new double[] {7, 7, 7, 8, 8, 8}, run(new Constant(new double[] {7, 8}, 2, 1), "w_weight", 2, 3));
        assertArrayEquals(new double[] {5, 6, 5, 6}, run(new Constant(new double[] {5, 6}, 1, 1, 2), "w_weight", 2, 2));
        double[] cube = run(new Constant(new double[] {1, 2}, 2, 1, 1), "w_weight", 2, 2, 3);
        assertArrayEquals(new double[] {1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2}, cube);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> run(new Constant(new double[] {1, 2, 3}, 3), "w_weight", 2, 2));
        assertTrue(e.getMessage().contains("(3,)") && e.getMessage().contains("w_weight") && e.getMessage().contains("(2, 2)"),
                e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Constant(new double[] {1, 2, 3}, 2, 2));
    }

    @Test
    void constantFromAnNdArrayCopiesIt() {
        Constant c;
        try (NDArray v = NDArray.create(new float[] {1, 2, 3, 4}, 2, 2)) {
            c = new Constant(v);
        }
        assertArrayEquals(new double[] {1, 2, 3, 4}, run(c, "fc_weight", 2, 2));
        assertArrayEquals(new long[] {2, 2}, c.valueShape());
        assertEquals("[\"constant\", {\"value\": [[1.0, 2.0], [3.0, 4.0]]}]", c.dumps());
        Constant fromJson = (Constant) Initializer.create(c.dumps());
        assertEquals(c, fromJson);
        assertArrayEquals(new double[] {1, 2, 3, 4}, run(fromJson, "fc_weight", 2, 2));
        assertThrows(IllegalArgumentException.class, () -> new Constant(List.of(List.of(1, 2), List.of(3))));
        assertThrows(IllegalArgumentException.class, () -> new Constant(List.of(List.of(1, "a"))));
    }
}
