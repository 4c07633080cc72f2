package dev.kiln.optimizer.lr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.optimizer.lr.LRScheduler.WarmupMode;

import org.junit.jupiter.api.Test;

/** The scheduler sequences and unit-test values of module-api spec §5.5 (verified on MXNet 1.9). */
class LRSchedulerTest {
    static final double EPS = 1e-6;

    static void assertSequence(LRScheduler s, double... expected) {
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], s.get(i), EPS, "value at num_update " + i);
        }
    }

    @Test
    void factorSequenceChangesStrictlyAfterEachStep() {
        FactorScheduler s = new FactorScheduler(2, 0.5, 1e-8, 1, 0, 0, WarmupMode.LINEAR);
        assertSequence(s, 1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125);
        assertEquals(6, s.count());
    }

    @Test
    void multiFactorSequence() {
        MultiFactorScheduler s = new MultiFactorScheduler(new long[] {2, 5}, 0.1, 1, 0, 0, WarmupMode.LINEAR);
        assertSequence(s, 1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01);
        assertEquals(2, s.curStepInd());
    }

    @Test
    void polySequenceWithLinearWarmup() {
        PolyScheduler s = new PolyScheduler(10, 1, 2, 0, 2, 0.1, WarmupMode.LINEAR);
        assertSequence(s, 0.1, 0.55, 1.0, 0.765625, 0.5625, 0.390625, 0.25, 0.140625, 0.0625, 0.015625, 0, 0, 0);
    }

    @Test
    void cosineSequence() {
        CosineScheduler s = new CosineScheduler(10, 1, 0.1);
        assertSequence(s, 1.0, 0.977975, 0.914058, 0.814503, 0.689058, 0.55, 0.410942, 0.285497, 0.185942, 0.122025,
                0.1, 0.1, 0.1);
    }

    @Test
    void factorWarmupCountsTowardsTheFirstDecay() {
        FactorScheduler s = new FactorScheduler(3, 0.5, 1e-8, 1, 4, 0.2, WarmupMode.LINEAR);
        assertSequence(s, 0.2, 0.4, 0.6, 0.8, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125);
    }

    @Test
    void mxnetUnitTestFactor() {
        FactorScheduler s = new FactorScheduler(100, 0.1, 1e-4, 1, 20, 0.1, WarmupMode.CONSTANT);
        assertEquals(0.1, s.get(0), EPS);
        assertEquals(0.1, s.get(10), EPS);
        assertEquals(1, s.get(21), EPS);
        assertEquals(0.1, s.get(101), EPS);
        assertEquals(0.01, s.get(201), EPS);
        assertEquals(1e-4, s.get(1000), 1e-12);  // floored at stop_factor_lr
    }

    @Test
    void mxnetUnitTestMultiFactor() {
        MultiFactorScheduler s = new MultiFactorScheduler(new long[] {15, 25}, 0.1, 0.1, 10, 0.05, WarmupMode.LINEAR);
        assertEquals(0.05, s.get(0), EPS);
        assertEquals(0.075, s.get(5), EPS);
        assertEquals(0.1, s.get(15), EPS);
        assertEquals(0.01, s.get(16), EPS);
        assertEquals(0.001, s.get(26), EPS);
    }

    @Test
    void mxnetUnitTestPoly() {
        PolyScheduler s = new PolyScheduler(1000, 3, 2, 0, 100, 0, WarmupMode.LINEAR);
        assertEquals(1.5, s.get(50), EPS);
        assertEquals(3, s.get(100), EPS);
        assertEquals(0, s.get(1000), EPS);
    }

    @Test
    void mxnetUnitTestCosine() {
        CosineScheduler s = new CosineScheduler(1000, 3, 0.1);
        assertEquals(3, s.get(0), EPS);
        assertEquals(0.1, s.get(1000), EPS);
        assertTrue(new CosineScheduler(1000, 3, 0.1).get(500) > 1.5);
    }

    @Test
    void warmupTargetIsCapturedAtConstruction() {
        FactorScheduler s = new FactorScheduler(10, 0.5, 1e-8, 1, 4, 0, WarmupMode.LINEAR);
        s.setBaseLr(2);  // what an optimizer with learning_rate=2 does
        assertEquals(0.5, s.get(2), EPS);  // ramps to the construction-time base_lr 1
        assertEquals(2, s.get(5), EPS);
        assertEquals(1, s.warmupFinalLr(), 0);
    }

    @Test
    void polyAndCosineKeepTheirOriginalBase() {
        PolyScheduler p = new PolyScheduler(10, 1);
        p.setBaseLr(5);
        assertEquals(0.64, p.get(2), EPS);  // (1 - 2/10)^2 * base_lr_orig 1
        CosineScheduler c = new CosineScheduler(10, 1, 0);
        c.setBaseLr(5);
        assertEquals(1, c.get(0), EPS);
    }

    @Test
    void schedulesAreStateful() {
        FactorScheduler s = new FactorScheduler(2, 0.5, 1e-8, 1, 0, 0, WarmupMode.LINEAR);
        assertEquals(0.25, s.get(5), EPS);
        // MXNet's schedule never goes back: an earlier update count keeps the decayed rate
        assertEquals(0.25, s.get(1), EPS);
        assertEquals(0.25, s.baseLr(), EPS);
    }

    @Test
    void invalidArgumentsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new FactorScheduler(0, 0.5));
        assertThrows(IllegalArgumentException.class, () -> new FactorScheduler(1, 1.5));
        assertThrows(IllegalArgumentException.class, () -> new FactorScheduler(1, 0.5, 1e-8, 0.1, 2, 0.2, WarmupMode.LINEAR));
        assertThrows(IllegalArgumentException.class, () -> new FactorScheduler(1, 0.5, 1e-8, 0.1, -1, 0, WarmupMode.LINEAR));
        assertThrows(IllegalArgumentException.class, () -> new FactorScheduler(1, 0.5, 1e-8, 0.1, 0, 0, null));
        assertThrows(IllegalArgumentException.class, () -> WarmupMode.of("cubic"));
        assertThrows(IllegalArgumentException.class, () -> new MultiFactorScheduler(new long[] {5, 5}, 0.1));
        assertThrows(IllegalArgumentException.class, () -> new MultiFactorScheduler(new long[] {0, 5}, 0.1));
        assertThrows(IllegalArgumentException.class, () -> new MultiFactorScheduler(new long[] {}, 0.1));
        assertThrows(IllegalArgumentException.class, () -> new MultiFactorScheduler(new long[] {1}, 2));
        assertThrows(IllegalArgumentException.class, () -> new PolyScheduler(0, 1));
        assertThrows(IllegalArgumentException.class, () -> new PolyScheduler(10, 1, 2, 0, 10, 0, WarmupMode.LINEAR));
        assertThrows(IllegalArgumentException.class, () -> new CosineScheduler(0, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new CosineScheduler(5, 1, 0, 7, 0, WarmupMode.LINEAR));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new FactorScheduler(0, 0.5));
        assertTrue(e.getMessage().contains("step"), e.getMessage());
    }
}
