package dev.kiln.init;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;

import java.util.SplittableRandom;

/**
 * Writes values into a target array that the initializer does not own. The target may be on any
 * device and of any dtype: values are produced in a CPU array (created and closed here) and
 * copied over, converting the type on the CPU first when the target is not on the CPU.
 * Package-private; stateless.
 */
final class Fill {
    private Fill() {}

    static boolean onCpu(NDArray a) {
        return a.context().devType() == Context.CPU;
    }

    /** Every element of {@code arr} := {@code value}. */
    static void constant(NDArray arr, double value) {
        if (onCpu(arr)) {
            arr.fill(value);
            return;
        }
        try (NDArray tmp = NDArray.zeros(arr.shape(), arr.dtype(), Context.cpu())) {
            tmp.fill(value);
            tmp.copyTo(arr);
        }
    }

    /** {@code arr} := {@code values} (row-major, one per element). */
    static void values(NDArray arr, double[] values) {
        if (values.length != arr.size()) {
            throw new IllegalArgumentException("cannot write " + values.length + " values into an array of shape "
                    + arr.shape() + " (" + arr.size() + " elements)");
        }
        try (NDArray tmp = NDArray.create(values, arr.shape().dims())) {
            fromCpu(arr, tmp);
        }
    }

    /** Copies a CPU array (same element count) into {@code arr}, converting the type as needed. */
    static void fromCpu(NDArray arr, NDArray cpu) {
        if (cpu.dtype() == arr.dtype() || onCpu(arr)) {
            cpu.copyTo(arr);
            return;
        }
        try (NDArray conv = cpu.asType(arr.dtype())) {
            conv.copyTo(arr);
        }
    }

    /** Uniform samples in [low, high) from the native generator seeded by {@link Initializer#nextSeed()}. */
    static void uniform(NDArray arr, double low, double high) {
        try (NDArray tmp = NDArray.randomUniform(low, high, arr.shape(), sampleType(arr), Context.cpu(), Initializer.nextSeed())) {
            fromCpu(arr, tmp);
        }
    }

    /** The native generator writes float32/float64 directly; other targets get float64 samples converted. */
    private static DType sampleType(NDArray arr) {
        return arr.dtype() == DType.FLOAT32 ? DType.FLOAT32 : DType.FLOAT64;
    }

    /** Normal samples N(mean, std^2) from the native generator seeded by {@link Initializer#nextSeed()}. */
    static void normal(NDArray arr, double mean, double std) {
        try (NDArray tmp = NDArray.randomNormal(mean, std, arr.shape(), sampleType(arr), Context.cpu(), Initializer.nextSeed())) {
            fromCpu(arr, tmp);
        }
    }

    /** Uniform samples in [low, high) as doubles (for work done in Java, e.g. Orthogonal's SVD). */
    static double[] uniformDoubles(int n, double low, double high) {
        SplittableRandom r = new SplittableRandom(Initializer.nextSeed());
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = r.nextDouble(low, high);
        }
        return out;
    }

    /** Standard-normal samples scaled to N(mean, std^2) as doubles (polar Box-Muller). */
    static double[] normalDoubles(int n, double mean, double std) {
        SplittableRandom r = new SplittableRandom(Initializer.nextSeed());
        double[] out = new double[n];
        for (int i = 0; i < n; i += 2) {
            double u;
            double v;
            double s;
            do {
                u = r.nextDouble(-1.0, 1.0);
                v = r.nextDouble(-1.0, 1.0);
                s = u * u + v * v;
            } while (s >= 1.0 || s == 0.0);
            double m = Math.sqrt(-2.0 * Math.log(s) / s);
            out[i] = mean + std * u * m;
            if (i + 1 < n) {
                out[i + 1] = mean + std * v * m;
            }
        }
        return out;
    }

    /** Checks that an array's element count fits a Java array. */
    static int javaSize(NDArray arr, String who) {
        long n = arr.size();
        if (n > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException(who + ": array " + arr.shape() + " is too large to initialise through a Java array");
        }
        return (int) n;
    }
}
