package dev.kiln.ops.elemwise;

import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The random operators (ops/random/random.cc): _random_uniform, _random_normal, _random_randint,
 * _random_exponential, _random_gamma, _random_poisson, _random_uniform_like, _random_normal_like and
 * _shuffle. Values cannot equal MXNet's (another generator), so the distributions are tested:
 * bounds, means and variances within 6 standard errors of the sample size, Kolmogorov-Smirnov
 * distances below the 0.1% critical value and chi-square statistics below their 0.1% quantiles.
 * Every sample comes from an executor with a fixed seed, so these checks are deterministic (they
 * cannot flake); the seeds only matter in that a broken sampler fails them.
 */
@ExtendWith(NoLeaks.class)
public class RandomOpsTest {
    static final int N = 200_000;

    record Result(double[] v, DType type, long[] shape) {}

    /** An executor of `sym` on ctx, its arguments of `type` set to `values`; the caller closes it. */
    static Executor bind(Context ctx, Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, DType type,
            Map<String, GradReq> reqs, Executor.Options opt) {
        Map<String, DType> types = new HashMap<>();
        shapes.keySet().forEach(k -> types.put(k, type));
        Executor ex = Executor.simpleBind(sym, ctx, shapes, types, reqs, opt);
        try {
            values.forEach((k, v) -> ex.argDict().get(k).set(v));
        } catch (RuntimeException e) {
            ex.close();
            throw e;
        }
        return ex;
    }

    /** Forward (inference) of `sym` (no arguments) on ctx in an executor seeded with `seed`. */
    static Result run(Context ctx, Symbol sym, long seed) {
        try (Executor ex = bind(ctx, sym, Map.of(), Map.of(), DType.FLOAT32, Map.of(), new Executor.Options().optSeed(seed))) {
            ex.forward(false);
            NDArray o = ex.outputs().get(0);
            return new Result(o.toDoubleArray(), o.dtype(), o.shape().dims());
        }
    }

    static double mean(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    static double variance(double[] v) {
        double m = mean(v), s = 0;
        for (double x : v) {
            s += (x - m) * (x - m);
        }
        return s / (v.length - 1);
    }

    /**
     * Sample mean and variance against the distribution's: within 6 standard errors (the variance's
     * from the fourth central moment mu4).
     */
    static void assertMoments(double[] v, double mu, double var, double mu4, String what) {
        int n = v.length;
        double m = mean(v), s2 = variance(v);
        double seMean = Math.sqrt(var / n), seVar = Math.sqrt((mu4 - var * var) / n);
        assertTrue(Math.abs(m - mu) < 6 * seMean, what + ": mean " + m + ", expected " + mu + " +- " + 6 * seMean);
        assertTrue(Math.abs(s2 - var) < 6 * seVar, what + ": variance " + s2 + ", expected " + var + " +- " + 6 * seVar);
    }

    /** Kolmogorov-Smirnov distance of the sample to `cdf`, below the 0.1% critical value 1.95 / sqrt(n). */
    static void assertKs(double[] v, java.util.function.DoubleUnaryOperator cdf, String what) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        double d = 0;
        for (int i = 0; i < n; i++) {
            double f = cdf.applyAsDouble(s[i]);
            d = Math.max(d, Math.max(f - (double) i / n, (double) (i + 1) / n - f));
        }
        assertTrue(d < 1.95 / Math.sqrt(n), what + ": KS distance " + d + " >= " + 1.95 / Math.sqrt(n));
    }

    /** Pearson's chi-square of `counts` against `expected` counts, below `limit` (a 0.1% quantile). */
    static void assertChiSquare(long[] counts, double[] expected, double limit, String what) {
        double chi = 0;
        for (int i = 0; i < counts.length; i++) {
            chi += (counts[i] - expected[i]) * (counts[i] - expected[i]) / expected[i];
        }
        assertTrue(chi < limit, what + ": chi-square " + chi + " >= " + limit + " for counts " + Arrays.toString(counts));
    }

    /** Normal CDF through erfc (Numerical Recipes' erfcc, fractional error below 1.2e-7). */
    static double normalCdf(double x) {
        double z = Math.abs(x) / Math.sqrt(2), t = 1 / (1 + 0.5 * z);
        double r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
                + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? 1 - r / 2 : r / 2;
    }

    @Test
    void uniformOnCpu() {
        uniform(Context.cpu());
    }

    static void uniform(Context ctx) {
        Result r = run(ctx, Symbol.randomUniform(null, -2, 3, null, 400, 500), 11);
        assertEquals(DType.FLOAT32, r.type());
        assertArrayEquals(new long[] {400, 500}, r.shape());
        for (double x : r.v()) {
            assertTrue(x >= -2 && x < 3, "outside [-2, 3): " + x);
        }
        assertMoments(r.v(), 0.5, 25.0 / 12, Math.pow(5, 4) / 80, "uniform(-2, 3)");
        assertKs(r.v(), x -> (x + 2) / 5, "uniform(-2, 3)");
        // float64 and float16 outputs; low == high gives low everywhere
        Result d = run(ctx, Symbol.randomUniform(null, 0, 1, DType.FLOAT64, N), 12);
        assertEquals(DType.FLOAT64, d.type());
        assertKs(d.v(), x -> x, "uniform float64");
        Result h = run(ctx, Symbol.randomUniform(null, 5, 6, "float16", 1000), 13);
        assertEquals(DType.FLOAT16, h.type());
        for (double x : h.v()) {
            assertTrue(x >= 5 && x <= 6, "float16 outside [5, 6]: " + x);
        }
        Result eq = run(ctx, Symbol.randomUniform(null, 1.5, 1.5, null, 10), 14);
        for (double x : eq.v()) {
            assertEquals(1.5, x);
        }
        // a narrow interval below a float32 boundary: many draws round to high in float32, they stay below it
        Result narrow = run(ctx, Symbol.randomUniform(null, 1 - Math.pow(2, -20), 1, null, N), 15);
        for (double x : narrow.v()) {
            assertTrue(x < 1, "uniform reached high after rounding to float32: " + x);
        }
    }

    @Test
    void normalOnCpu() {
        normal(Context.cpu());
    }

    static void normal(Context ctx) {
        Result r = run(ctx, Symbol.randomNormal(null, 1.5, 2, DType.FLOAT64, N), 21);
        assertEquals(DType.FLOAT64, r.type());
        assertMoments(r.v(), 1.5, 4, 3 * 16, "normal(1.5, 2)");
        assertKs(r.v(), x -> normalCdf((x - 1.5) / 2), "normal(1.5, 2)");
        Result f = run(ctx, Symbol.randomNormal(null, -3, 0.25, null, N), 22);
        assertEquals(DType.FLOAT32, f.type());
        assertKs(f.v(), x -> normalCdf((x + 3) / 0.25), "normal(-3, 0.25) float32");
    }

    @Test
    void exponentialOnCpu() {
        exponential(Context.cpu());
    }

    static void exponential(Context ctx) {
        Result r = run(ctx, Symbol.randomExponential(null, 2, null, N), 31);
        for (double x : r.v()) {
            assertTrue(x >= 0 && Double.isFinite(x), "exponential sample " + x);
        }
        assertMoments(r.v(), 0.5, 0.25, 9 / 16.0, "exponential(2)");
        assertKs(r.v(), x -> 1 - Math.exp(-2 * x), "exponential(2)");
    }

    @Test
    void gammaOnCpu() {
        gamma(Context.cpu());
    }

    static void gamma(Context ctx) {
        for (double[] ab : new double[][] {{0.5, 2}, {1, 1}, {3, 0.5}, {40, 1.5}}) {
            double a = ab[0], b = ab[1];
            Result r = run(ctx, Symbol.randomGamma(null, a, b, DType.FLOAT64, N), 41 + (long) (a * 10));
            for (double x : r.v()) {
                assertTrue(x >= 0 && Double.isFinite(x), "gamma sample " + x);
            }
            double var = a * b * b;
            assertMoments(r.v(), a * b, var, var * var * (3 + 6 / a), "gamma(" + a + ", " + b + ")");
        }
        // alpha = 1 is the exponential distribution of mean beta
        Result e = run(ctx, Symbol.randomGamma(null, 1, 2, DType.FLOAT64, N), 49);
        assertKs(e.v(), x -> 1 - Math.exp(-x / 2), "gamma(1, 2)");
    }

    /** Poisson probabilities P(k) for k = 0..kmax-1, the rest in the last bin. */
    static double[] poissonBins(double lam, int kmax) {
        double[] p = new double[kmax + 1];
        double pk = Math.exp(-lam), total = 0;
        for (int k = 0; k < kmax; k++) {
            p[k] = pk;
            total += pk;
            pk *= lam / (k + 1);
        }
        p[kmax] = 1 - total;
        return p;
    }

    @Test
    void poissonOnCpu() {
        poisson(Context.cpu());
    }

    static void poisson(Context ctx) {
        // lam 4: the multiplication method; lam 30: the rejection method
        for (double lam : new double[] {4, 30}) {
            Result r = run(ctx, Symbol.randomPoisson(null, lam, null, N), 51 + (long) lam);
            int lo = lam < 12 ? 0 : 15, bins = lam < 12 ? 12 : 30;  // k < lo pooled into the first bin, k >= lo + bins - 1 into the last
            long[] counts = new long[bins];
            for (double x : r.v()) {
                assertTrue(x >= 0 && x == Math.floor(x), "poisson sample " + x);
                counts[(int) Math.min(bins - 1, Math.max(0, x - lo))]++;
            }
            assertMoments(r.v(), lam, lam, lam * (1 + 3 * lam), "poisson(" + lam + ")");
            double[] all = poissonBins(lam, lo + bins - 1);
            double[] expected = new double[bins];
            for (int k = 0; k < all.length; k++) {
                expected[Math.min(bins - 1, Math.max(0, k - lo))] += all[k] * N;
            }
            // 0.1% quantiles of chi-square with 11 and 29 degrees of freedom
            assertChiSquare(counts, expected, bins == 12 ? 31.26 : 58.3, "poisson(" + lam + ")");
        }
        // huge rates: the normal approximation (mean lam, standard deviation sqrt(lam)); float32's largest terminates
        Result huge = run(ctx, Symbol.randomPoisson(null, 1e14, DType.FLOAT64, 20000), 58);
        assertMoments(huge.v(), 1e14, 1e14, 3e28, "poisson(1e14)");
        for (double x : run(ctx, Symbol.randomPoisson(null, 3e38, null, 100), 57).v()) {
            assertTrue(x > 2.9e38 && Double.isFinite(x), "poisson(3e38) sample " + x);
        }
        Result zero = run(ctx, Symbol.randomPoisson(null, 0, null, 100), 59);
        assertArrayEquals(new double[100], zero.v(), "lam 0 gives zeros");
    }

    @Test
    void randintOnCpu() {
        randint(Context.cpu());
    }

    static void randint(Context ctx) {
        Result r = run(ctx, Symbol.randomRandint(null, -3, 5, null, N), 61);
        assertEquals(DType.INT32, r.type(), "int32 by default");
        long[] counts = new long[8];
        for (double x : r.v()) {
            assertTrue(x >= -3 && x < 5 && x == Math.floor(x), "randint sample " + x);
            counts[(int) x + 3]++;
        }
        double[] expected = new double[8];
        Arrays.fill(expected, N / 8.0);
        assertChiSquare(counts, expected, 24.32, "randint[-3, 5)");  // 7 degrees of freedom, 0.1%
        // int64 over a wide range: bounds, and the mean
        long lo = -(1L << 50), hi = 1L << 51;
        Result w = run(ctx, Symbol.randomRandint(null, lo, hi, DType.INT64, N), 62);
        assertEquals(DType.INT64, w.type());
        for (double x : w.v()) {
            assertTrue(x >= lo && x < hi, "int64 randint sample " + x);
        }
        double width = (double) hi - lo;
        assertMoments(w.v(), (lo + (double) hi) / 2, width * width / 12, Math.pow(width, 4) / 80, "randint wide");
        // one value
        Result one = run(ctx, Symbol.randomRandint(null, 7, 8, null, 20), 63);
        double[] sevens = new double[20];
        Arrays.fill(sevens, 7);
        assertArrayEquals(sevens, one.v());
    }

    @Test
    void seedsMakeRunsReproducibleOnCpu() {
        seedsMakeRunsReproducible(Context.cpu());
    }

    static void seedsMakeRunsReproducible(Context ctx) {
        List<Symbol> syms = List.of(Symbol.randomUniform(null, 0, 1, null, 50), Symbol.randomNormal(null, 0, 1, null, 50),
                Symbol.randomRandint(null, 0, 1000000, null, 50), Symbol.randomExponential(null, 1, null, 50),
                Symbol.randomGamma(null, 0.7, 1, null, 50), Symbol.randomPoisson(null, 20, null, 50),
                Symbol.randomGamma(null, 2.5, 1, null, 300, 400));  // large enough for the CPU's threads: the same draws
        for (Symbol s : syms) {
            String what = s.listOutputs().toString();
            assertArrayEquals(run(ctx, s, 5).v(), run(ctx, s, 5).v(), what + ": same seed, same values");
            assertFalse(Arrays.equals(run(ctx, s, 5).v(), run(ctx, s, 6).v()), what + ": another seed, other values");
        }
        // two samplers in one graph draw different seeds; a second forward draws new values
        Symbol a = Symbol.randomUniform("a", 0, 1, null, 30), b = Symbol.randomUniform("b", 0, 1, null, 30);
        try (Executor ex = bind(ctx, Symbol.group(a, b), Map.of(), Map.of(), DType.FLOAT32, Map.of(),
                new Executor.Options().optSeed(3))) {
            ex.forward(false);
            double[] va = ex.outputs().get(0).toDoubleArray(), vb = ex.outputs().get(1).toDoubleArray();
            assertFalse(Arrays.equals(va, vb), "two nodes, the same values");
            ex.forward(false);
            assertFalse(Arrays.equals(va, ex.outputs().get(0).toDoubleArray()), "a second forward repeats the first");
        }
    }

    @Test
    void likeOpsTakeShapeAndTypeAndHaveZeroGradientOnCpu() {
        likeOpsTakeShapeAndTypeAndHaveZeroGradient(Context.cpu());
    }

    static void likeOpsTakeShapeAndTypeAndHaveZeroGradient(Context ctx) {
        Symbol x = Symbol.variable("x");
        Map<String, long[]> shapes = Map.of("x", new long[] {300, 400});
        double[] xv = new double[300 * 400];
        Arrays.fill(xv, 1e6);  // not read
        for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
            try (Executor ex = bind(ctx, Symbol.randomUniformLike(null, x, 2, 4), shapes, Map.of("x", xv), t, Map.of(),
                    new Executor.Options().optSeed(71))) {
                ex.forward(false);
                NDArray o = ex.outputs().get(0);
                assertEquals(t, o.dtype());
                assertArrayEquals(new long[] {300, 400}, o.shape().dims());
                double[] v = o.toDoubleArray();
                for (double u : v) {
                    assertTrue(u >= 2 && u < 4, "uniform_like sample " + u);
                }
                assertKs(v, u -> (u - 2) / 2, "uniform_like " + t);
            }
            try (Executor ex = bind(ctx, Symbol.randomNormalLike(null, x, -1, 3), shapes, Map.of("x", xv), t, Map.of(),
                    new Executor.Options().optSeed(72))) {
                ex.forward(false);
                assertKs(ex.outputs().get(0).toDoubleArray(), u -> normalCdf((u + 1) / 3), "normal_like " + t);
            }
        }
        for (Symbol s : List.of(Symbol.randomUniformLike(null, x, 0, 1), Symbol.randomNormalLike(null, x, 0, 1))) {
            for (GradReq req : List.of(GradReq.WRITE, GradReq.ADD)) {
                // the gradient buffer starts at 7 (kept by add, overwritten by write), then two backward passes
                try (Executor ex = bind(ctx, s, Map.of("x", new long[] {3, 4}), Map.of("x", new double[12]), DType.FLOAT64,
                        Map.of("x", req), new Executor.Options().optSeed(1));
                        NDArray head = NDArray.zeros(new dev.kiln.ndarray.Shape(3, 4), DType.FLOAT64, ctx)) {
                    head.set(filled(12, 1.5));
                    ex.gradDict().get("x").set(filled(12, 7));
                    ex.forward(true);
                    ex.backward(head);
                    ex.backward(head);
                    assertArrayEquals(filled(12, req == GradReq.ADD ? 7 : 0), ex.gradDict().get("x").toDoubleArray(),
                            s.listOutputs() + " gradient, " + req);
                }
            }
        }
        assertThrowsMessage(() -> Executor.simpleBind(Symbol.randomNormalLike(null, x, 0, 1), Context.cpu(),
                Map.of("x", new long[] {2}), Map.of("x", DType.INT32), Map.of(), new Executor.Options()).close(),
                "_random_normal_like", "float16, bfloat16, float32 or float64");
    }

    static double[] filled(int n, double v) {
        double[] r = new double[n];
        Arrays.fill(r, v);
        return r;
    }

    @Test
    void shufflePermutesRowsOnCpu() {
        shufflePermutesRows(Context.cpu());
    }

    static void shufflePermutesRows(Context ctx) {
        Symbol x = Symbol.variable("x");
        int rows = 50, cols = 3;
        double[] xv = new double[rows * cols];
        for (int i = 0; i < xv.length; i++) {
            xv[i] = i;
        }
        for (DType t : List.of(DType.FLOAT32, DType.FLOAT64, DType.INT32, DType.UINT8, DType.FLOAT16)) {
            try (Executor ex = bind(ctx, Symbol.shuffle(null, x), Map.of("x", new long[] {rows, cols}), Map.of("x", xv), t,
                    Map.of(), new Executor.Options().optSeed(81))) {
                ex.forward(false);
                assertEquals(t, ex.outputs().get(0).dtype());
                double[] y = ex.outputs().get(0).toDoubleArray();
                boolean[] seen = new boolean[rows];
                for (int i = 0; i < rows; i++) {
                    int src = (int) y[i * cols] / cols;
                    assertFalse(seen[src], t + ": row " + src + " twice");
                    seen[src] = true;
                    for (int j = 0; j < cols; j++) {
                        assertEquals(src * cols + j, y[i * cols + j], t + ": row " + src + " broken up");
                    }
                }
                assertFalse(Arrays.equals(xv, y), t + ": identity permutation");
            }
        }
        // every permutation of 4 rows is equally likely: 4800 forwards of one executor (a new seed each)
        Map<String, Integer> index = new HashMap<>();
        long[] counts = new long[24];
        try (Executor ex = bind(ctx, Symbol.shuffle(null, x), Map.of("x", new long[] {4}), Map.of("x", new double[] {0, 1, 2, 3}),
                DType.FLOAT32, Map.of(), new Executor.Options().optSeed(82))) {
            for (int k = 0; k < 4800; k++) {
                ex.forward(false);
                String p = Arrays.toString(ex.outputs().get(0).toDoubleArray());
                index.putIfAbsent(p, index.size());
                counts[index.get(p)]++;
            }
        }
        assertEquals(24, index.size(), "permutations seen");
        double[] expected = filled(24, 200);
        assertChiSquare(counts, expected, 49.73, "permutations of 4");  // 23 degrees of freedom, 0.1%
    }

    /**
     * Every distribution, _like and _shuffle check of this class on ctx (the GPU's case, GpuTensorCases):
     * the device's samplers give the same distributions and are reproducible for a seed.
     */
    public static void checkOn(Context ctx) {
        uniform(ctx);
        normal(ctx);
        exponential(ctx);
        gamma(ctx);
        poisson(ctx);
        randint(ctx);
        seedsMakeRunsReproducible(ctx);
        likeOpsTakeShapeAndTypeAndHaveZeroGradient(ctx);
        shufflePermutesRows(ctx);
    }

    @Test
    void errors() {
        Context ctx = Context.cpu();
        assertThrowsMessage(() -> run(ctx, Symbol.randomUniform(null, 2, 1, null, 3), 1), "_random_uniform",
                "low must be less or equal to high");
        assertThrowsMessage(() -> run(ctx, Symbol.randomNormal(null, 0, -1, null, 3), 1), "scale parameter in gaussian has to be positive");
        assertThrowsMessage(() -> run(ctx, Symbol.randomNormal(null, 0, 0, null, 3), 1), "scale parameter in gaussian has to be positive");
        assertThrowsMessage(() -> run(ctx, Symbol.randomExponential(null, 0, null, 3), 1), "lambda parameter in exponential");
        assertThrowsMessage(() -> run(ctx, Symbol.randomGamma(null, 0, 1, null, 3), 1), "alpha parameter in gamma");
        assertThrowsMessage(() -> run(ctx, Symbol.randomGamma(null, 1, -2, null, 3), 1), "beta parameter in gamma");
        assertThrowsMessage(() -> run(ctx, Symbol.randomPoisson(null, -0.5, null, 3), 1), "lambda parameter in poisson");
        assertThrowsMessage(() -> run(ctx, Symbol.randomRandint(null, 4, 4, null, 3), 1), "_random_randint", "low must be less than high");
        assertThrowsMessage(() -> run(ctx, Symbol.randomUniform(null, 0, Double.POSITIVE_INFINITY, null, 3), 1), "high");
        assertThrowsMessage(() -> run(ctx, Symbol.randomNormal(null, 0, 1e300, null, 3), 1), "scale must be finite");  // inf in float32
        assertThrowsMessage(() -> run(ctx, Symbol.randomNormal(null, 0, 1e-50, null, 3), 1), "scale parameter in gaussian");  // 0 in float32
        assertThrowsMessage(() -> run(ctx, Symbol.builder("_random_randint").param("low", 0).param("shape", new long[] {2}).build(), 1),
                "high");
        assertThrowsMessage(() -> run(ctx, Symbol.randomUniform(null, 0, 1, DType.INT32, 3), 1), "dtype");
        assertThrowsMessage(() -> run(ctx, Symbol.randomRandint(null, 0, 3, DType.FLOAT32, 3), 1), "dtype");
        assertThrowsMessage(() -> run(ctx, Symbol.randomNormal(null, 0, 1, null, 4, -2), 1), "_random_normal", "negative dimension");
        assertThrowsMessage(() -> run(ctx, Symbol.randomNormal(null, 0, 1, null, 1L << 40, 1L << 40, 1L << 40), 1), "too many elements");
        assertThrowsMessage(() -> run(ctx, Symbol.randomGamma(null, 1, 1, DType.FLOAT64, 1L << 31, 1L << 31), 1));  // memory: an exception
        // a shape left unknown (no consumer gives it) cannot be bound
        assertThrowsMessage(() -> run(ctx, Symbol.randomUniform(null, 0, 1, null), 1), "shape");
    }
}
