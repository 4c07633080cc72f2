package dev.kiln.testutil;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.DType;
import dev.kiln.op.OpInfo;
import dev.kiln.op.Ops;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Seeded random operator calls for the differential fuzzers (dev.kiln.gpu.OpFuzz: CPU against GPU;
 * dev.kiln.mxnet.MxOpFuzz: Kiln against MXNet): attributes drawn from each parameter's type and
 * choices, and inputs (shapes, dtypes, values) for the operator's inputs. A {@link Policy} says how
 * wild: the fuzzer of one engine's own kernels wants boundary integers, empty and 0-d shapes and
 * malformed tuples; the one against MXNet wants calls that MXNet 1.x can represent and survive.
 *
 * <p>Not thread-safe (one Random).
 */
public final class FuzzGen {
    /** One drawn call: operator, MXNet attribute strings, and per input its shape, dtype and values. */
    public record Call(String op, Map<String, String> attrs, List<long[]> shapes, List<DType> types, List<double[]> values) {
        /** "op {attrs} inputs [[shape] dtype, ...]", for reports. */
        public String describe() {
            StringBuilder b = new StringBuilder(op + " " + attrs + " inputs [");
            for (int i = 0; i < shapes.size(); i++) {
                b.append(i > 0 ? ", " : "").append(java.util.Arrays.toString(shapes.get(i))).append(' ').append(types.get(i));
            }
            return b.append(']').toString();
        }
    }

    /**
     * How calls are drawn.
     *
     * @param ints values of int parameters
     * @param floats values of float parameters
     * @param oddTuples malformed or unusual tuples for shape parameters, used one time in four (none: never)
     * @param strings values of string parameters without choices
     * @param choiceOdds a parameter with choices takes one of them except one time in this many
     * @param tupleDimMax tuple items are drawn from [0, tupleDimMax), sometimes minus 2
     * @param emptyShapes input shapes may have rank 0 and dimensions of 0
     * @param dtypes input dtypes (repeat one to weight it)
     * @param sameOdds an input shares the first input's shape except one time in this many
     * @param nonzeroIntegers integer inputs hold no 0 and unsigned ones nothing negative
     * @param valueScale float values are multiples of 1 / valueScale in [-2, 2)
     */
    public record Policy(String[] ints, String[] floats, String[] oddTuples, String[] strings, int choiceOdds, int tupleDimMax,
            boolean emptyShapes, DType[] dtypes, int sameOdds, boolean nonzeroIntegers, int valueScale) {}

    private final Random r;
    private final Policy p;
    private int dimMax = 5;

    public FuzzGen(Random r, Policy p) {
        this.r = r;
        this.p = p;
    }

    /**
     * Input dimensions drawn up to {@code max} (default 5) instead, at most 100,000 elements an
     * input: large enough for the kernels' threaded, blocked and vectorized paths.
     */
    public FuzzGen withDimMax(int max) {
        dimMax = max;
        return this;
    }

    private int specialOdds;

    /** One float input value in {@code odds} (0: never, the default) is NaN, +inf or -inf. */
    public FuzzGen withSpecials(int odds) {
        specialOdds = odds;
        return this;
    }

    /** Random attributes for {@code op}: every required parameter, a third of the others; null when the op cannot be described. */
    public Map<String, String> attrs(String op) {
        Map<String, String> attrs = new LinkedHashMap<>();
        OpInfo info;
        try {
            info = Ops.info(op);
        } catch (KilnException e) {
            attrs.put("num_args", Integer.toString(1 + r.nextInt(3)));
            try {
                info = Ops.info(op, attrs);
            } catch (KilnException e2) {
                return null;
            }
        }
        for (OpInfo.Param param : info.params()) {
            if (!param.name().equals("num_args") && (param.isRequired() || r.nextInt(3) == 0)) {
                attrs.put(param.name(), value(param));
            }
        }
        return attrs;
    }

    /** A random value for one parameter, by its type and choices. */
    public String value(OpInfo.Param param) {
        if (!param.choices().isEmpty() && r.nextInt(p.choiceOdds) != 0) {
            return param.choices().get(r.nextInt(param.choices().size()));
        }
        switch (param.type()) {
            case "int":
                return p.ints[r.nextInt(p.ints.length)];
            case "float":
                return p.floats[r.nextInt(p.floats.length)];
            case "bool":
                return r.nextBoolean() ? "True" : "False";
            case "shape":
                if (p.oddTuples.length > 0 && r.nextInt(4) == 0) {
                    return p.oddTuples[r.nextInt(p.oddTuples.length)];
                }
                StringBuilder t = new StringBuilder("(");
                int n = r.nextInt(4);
                for (int i = 0; i < n; i++) {
                    t.append(i > 0 ? ", " : "").append(r.nextInt(p.tupleDimMax) - (r.nextInt(5) == 0 ? 2 : 0));
                }
                return t.append(n == 1 ? ",)" : ")").toString();
            default:
                return p.strings[r.nextInt(p.strings.length)];
        }
    }

    /** A random input shape: rank 1 to 4 (0 to 4 with empty shapes), small dimensions (sometimes 0). */
    public long[] shape() {
        long[] s = new long[p.emptyShapes ? r.nextInt(5) : 1 + r.nextInt(4)];
        for (int i = 0; i < s.length; i++) {
            s[i] = p.emptyShapes && r.nextInt(10) == 0 ? 0 : 1 + r.nextInt(r.nextInt(3) == 0 ? 2 : dimMax);
        }
        while (size(s) > 100_000) {  // only with large dimensions: halve the largest
            int big = 0;
            for (int i = 1; i < s.length; i++) {
                big = s[i] > s[big] ? i : big;
            }
            s[big] = (s[big] + 1) / 2;
        }
        return s;
    }

    /** Whether the operator draws random numbers (its results can only be compared by shape and dtype). */
    public static boolean isRandom(String op) {
        String lower = op.toLowerCase();
        return lower.contains("random") || lower.contains("sample") || lower.contains("dropout") || lower.contains("shuffle")
                || lower.equals("uniform") || lower.equals("normal");  // aliases of _random_uniform and _random_normal
    }

    /** Whether the call draws random numbers in training: a random operator, or LeakyReLU's rrelu. */
    public static boolean isRandom(String op, Map<String, String> attrs) {
        return isRandom(op) || op.equals("LeakyReLU") && "rrelu".equals(attrs.get("act_type"));
    }

    /** Number of elements of a shape. */
    public static long size(long[] s) {
        long n = 1;
        for (long d : s) {
            n *= d;
        }
        return n;
    }

    /** A whole call of {@code op}: attributes and inputs; null when the op cannot be described. */
    public Call call(String op) {
        Map<String, String> attrs = attrs(op);
        if (attrs == null) {
            return null;
        }
        int nin;
        try {
            nin = Ops.info(op, attrs).inputs().size();
        } catch (KilnException | IllegalArgumentException e) {
            nin = Ops.info(op, attrs.containsKey("num_args") ? Map.of("num_args", attrs.get("num_args")) : Map.of()).inputs().size();
        }
        long[] base = shape();
        DType baseType = p.dtypes[r.nextInt(p.dtypes.length)];
        List<long[]> shapes = new ArrayList<>();
        List<DType> types = new ArrayList<>();
        List<double[]> values = new ArrayList<>();
        for (int i = 0; i < nin; i++) {
            boolean same = r.nextInt(p.sameOdds) != 0;
            long[] s = same ? base : shape();
            DType t = same ? baseType : p.dtypes[r.nextInt(p.dtypes.length)];
            shapes.add(s);
            types.add(t);
            values.add(values(s, t));
        }
        return new Call(op, attrs, shapes, types, values);
    }

    /** Values exact in every dtype: small integers, or multiples of 1 / valueScale in [-2, 2). */
    public double[] values(long[] s, DType t) {
        double[] v = new double[(int) size(s)];
        boolean integral = t == DType.INT32 || t == DType.UINT8 || t == DType.INT8 || t == DType.INT64;
        for (int k = 0; k < v.length; k++) {
            double x;
            if (integral && p.nonzeroIntegers) {  // e.g. MXNet's integer division by zero raises SIGFPE
                x = r.nextBoolean() ? 1 + r.nextInt(4) : -(1 + r.nextInt(2));
                x = t == DType.UINT8 ? Math.abs(x) : x;
            } else {
                x = r.nextBoolean() ? r.nextInt(7) - 2 : Math.round((r.nextDouble() * 4 - 2) * p.valueScale) / (double) p.valueScale;
            }
            if (!integral && specialOdds > 0 && r.nextInt(specialOdds) == 0) {
                x = new double[] {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}[r.nextInt(3)];
            }
            v[k] = x;
        }
        return v;
    }
}
