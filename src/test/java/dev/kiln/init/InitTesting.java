package dev.kiln.init;

import dev.kiln.ndarray.NDArray;

import java.util.Map;

/** Small helpers for the initializer tests: every array created here is closed here. */
final class InitTesting {
    private InitTesting() {}

    /** Runs {@code init} on a fresh float32 CPU array of {@code shape} (pre-filled with NaN) and returns its values. */
    static double[] run(Initializer init, String name, Map<String, String> attrs, long... shape) {
        try (NDArray a = NDArray.zeros(shape)) {
            a.fill(Double.NaN);
            init.init(new InitDesc(name, attrs, null), a);
            return a.toDoubleArray();
        }
    }

    static double[] run(Initializer init, String name, long... shape) {
        return run(init, name, null, shape);
    }

    static double[] runLegacy(Initializer init, String name, long... shape) {
        try (NDArray a = NDArray.zeros(shape)) {
            a.fill(Double.NaN);
            init.initLegacy(name, a);
            return a.toDoubleArray();
        }
    }

    static double mean(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    static double std(double[] v) {
        double m = mean(v);
        double s = 0;
        for (double x : v) {
            s += (x - m) * (x - m);
        }
        return Math.sqrt(s / v.length);
    }

    static double maxAbs(double[] v) {
        double m = 0;
        for (double x : v) {
            m = Math.max(m, Math.abs(x));
        }
        return m;
    }

    static boolean all(double[] v, double value) {
        for (double x : v) {
            if (x != value) {
                return false;
            }
        }
        return true;
    }
}
