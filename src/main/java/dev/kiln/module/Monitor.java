package dev.kiln.module;

import dev.kiln.executor.Executor;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * MXNet's {@code mx.monitor.Monitor}: every {@code interval} batches, a statistic of every
 * operator output (and, with {@code monitorAll}, every operator input) of the installed
 * executors, and of every argument and auxiliary state, for debugging training.
 *
 * <pre>{@code
 * Monitor mon = new Monitor(100);           // RMS of every tensor, every 100th batch
 * mon.install(executor);                    // Module.installMonitor does this for its executors
 * for (...) {
 *     mon.tic();                            // before forward/backward
 *     executor.forwardBackward();
 *     ...update...
 *     mon.tocPrint();                       // logs "Batch:     101 fc1_output        0.1234"
 * }
 * }</pre>
 *
 * <p>How it differs from MXNet's callback: MXNet calls back after every operator; Kiln's
 * executor instead copies the monitored tensors into snapshot memory of its own while the pass
 * runs (see {@link Executor#setMonitor}), switched on by {@link #tic()} only for the batches that
 * are monitored and off again by {@link #toc()}, and the monitor computes the statistics at
 * {@code toc()}. Names, order and values are MXNet's (checked against MXNet 1.9.1); the
 * statistics of a batch cover the last forward pass of each executor and the backward pass after
 * it.
 *
 * <p>Ownership: the monitor creates and closes the statistic arrays; {@code statFunc} receives
 * read-only views owned by the executor (or the executor's argument arrays) and must not close or
 * modify them; every array it creates that it does not return is closed when the statistic has
 * been read. The monitor does not own the executors.
 *
 * <p>Thread-safety: not thread-safe; use it from the training thread.
 */
public final class Monitor {
    private static final Logger LOG = LoggerFactory.getLogger(Monitor.class);

    /** One statistic: the batch number (from 1), the tensor's name and MXNet's text of the value (ends with a TAB). */
    public record Stat(int step, String name, String text) {}

    private final int interval;
    private final Function<NDArray, NDArray> statFunc;
    private final Pattern pattern;
    private final boolean sort;
    private final boolean monitorAll;
    private final List<Executor> exes = new ArrayList<>();
    private int step;
    private boolean activated;

    /** A monitor with MXNet's defaults: RMS statistic, pattern {@code ".*"}, unsorted, op outputs only. */
    public Monitor(int interval) {
        this(interval, null, ".*", false, false);
    }

    /**
     * @param interval monitor every {@code interval}-th batch (batches 1, 1 + interval, ...)
     * @param statFunc the statistic of one tensor, returning a new array (shape (1,) prints as a
     *     scalar); null means {@link #rms}, MXNet's default {@code norm(x)/sqrt(x.size)}
     * @param pattern regular expression a name must match from its start (Python's
     *     {@code re.match}: anchored at the start only); null means {@code ".*"}
     * @param sort sort the statistics of a batch by name
     * @param monitorAll also monitor every operator input (MXNet's {@code monitor_all})
     * @throws IllegalArgumentException if {@code interval < 1} or the pattern does not compile
     */
    public Monitor(int interval, Function<NDArray, NDArray> statFunc, String pattern, boolean sort, boolean monitorAll) {
        if (interval < 1) {
            throw new IllegalArgumentException("Monitor: interval must be >= 1, got " + interval);
        }
        this.interval = interval;
        this.statFunc = statFunc == null ? Monitor::rms : statFunc;
        this.pattern = Pattern.compile(pattern == null ? ".*" : pattern);
        this.sort = sort;
        this.monitorAll = monitorAll;
    }

    /**
     * MXNet's default statistic, the root mean square {@code norm(x)/sqrt(x.size)} (MXNet's
     * docstring says "mean absolute value", the code computes the RMS). Returns a new shape-(1,)
     * array of x's type, owned by the caller (or the current scope).
     */
    public static NDArray rms(NDArray x) {
        try (NDArray sq = x.square(); NDArray mean = sq.mean()) {
            return mean.sqrt();
        }
    }

    /**
     * Installs the monitor on an executor (MXNet's {@code install}); several executors may be
     * installed, each once (installing one again is ignored). Monitoring on the executor starts
     * at the next monitored batch (immediately when installed between {@link #tic()} and
     * {@link #toc()} of a monitored batch).
     *
     * @throws IllegalStateException if the executor is closed
     */
    public void install(Executor exe) {
        Objects.requireNonNull(exe, "Monitor.install: executor");
        if (exe.isClosed()) {
            throw new IllegalStateException("Monitor.install: the executor is closed");
        }
        for (Executor e : exes) {
            if (e == exe) {
                return;
            }
        }
        exes.add(exe);
        if (activated) {
            exe.setMonitor(true, monitorAll);
        }
    }

    /** The installed executors that are still open (closed ones are dropped). */
    private List<Executor> live() {
        exes.removeIf(Executor::isClosed);
        return exes;
    }

    /**
     * Starts a batch: when the batch is a monitored one ({@code step % interval == 0}), switches
     * snapshots on in every installed executor and activates the monitor; then counts the batch.
     */
    public void tic() {
        if (step % interval == 0) {
            for (Executor e : live()) {
                e.setMonitor(true, monitorAll);
            }
            activated = true;
        }
        step++;
    }

    /**
     * Ends a batch: for a monitored batch, the statistics of every operator output (and input,
     * with {@code monitorAll}) of each installed executor's last pass, in execution order, then
     * of every argument (by {@code list_arguments} name) and auxiliary state, each executor in
     * installation order, keeping the names matching the pattern; sorted by name when asked.
     * Switches snapshots off again unless the next batch is monitored too. An empty list for a
     * batch that is not monitored.
     */
    public List<Stat> toc() {
        if (!activated) {
            return List.of();
        }
        List<Stat> res = new ArrayList<>();
        List<Executor> list = live();
        for (Executor e : list) {
            for (Map.Entry<String, NDArray> en : e.monitorEntries()) {
                if (matches(en.getKey())) {
                    res.add(new Stat(step, en.getKey(), stat(en.getValue())));
                }
            }
        }
        for (Executor e : list) {
            for (String name : e.symbol().listArguments()) {
                if (matches(name)) {
                    res.add(new Stat(step, name, stat(e.argDict().get(name))));
                }
            }
            for (String name : e.symbol().listAuxiliaryStates()) {
                if (matches(name)) {
                    res.add(new Stat(step, name, stat(e.auxDict().get(name))));
                }
            }
        }
        activated = false;
        if (step % interval != 0) {
            for (Executor e : list) {
                e.setMonitor(false, false);
            }
        }
        if (sort) {
            res.sort(Comparator.comparing(Stat::name)); // stable, as Python's sort
        }
        return Collections.unmodifiableList(res);
    }

    /** {@link #toc()} and logs each statistic at INFO as MXNet does: {@code Batch: %7d %-30s %s}. */
    public void tocPrint() {
        for (Stat s : toc()) {
            LOG.info(String.format(Locale.ROOT, "Batch: %7d %-30s %s", s.step(), s.name(), s.text()));
        }
    }

    /** Batches counted so far by {@link #tic()}. */
    public int step() {
        return step;
    }

    /** True between the {@link #tic()} and {@link #toc()} of a monitored batch. */
    public boolean isActivated() {
        return activated;
    }

    private boolean matches(String name) {
        return pattern.matcher(name).lookingAt();
    }

    /** statFunc(x) as MXNet's toc prints it: a scalar for shape (1,), else the NumPy array print; then a TAB. */
    private String stat(NDArray x) {
        try (NDScope scope = NDScope.open()) {
            NDArray v = statFunc.apply(x);
            if (v == null) {
                throw new IllegalStateException("Monitor: the statistic function returned null for a tensor of shape " + x.shape());
            }
            String text;
            boolean isScalar = v.shape().ndim() == 1 && v.shape().dims()[0] == 1;
            if (isScalar) {
                text = NumpyText.scalar(v.toDoubleArray()[0], v.dtype());
            } else {
                text = NumpyText.array(v.toDoubleArray(), v.shape().dims(), v.dtype());
            }
            // the scope closes v and any temporaries; an array it did not create (x itself, or a
            // detached one the function returned) is closed here unless it is x
            if (v != x && !v.isClosed()) {
                v.close();
            }
            return text + "\t";
        }
    }

    /** NumPy's {@code str()} of float scalars and arrays (default print options). Package-private for tests. */
    static final class NumpyText {
        private NumpyText() {}

        /** Shortest decimal that reads back as the same value of the type (NumPy's Dragon4 "unique"). */
        static BigDecimal shortest(double v, DType t) {
            BigDecimal exact = new BigDecimal(v);
            boolean single = t != DType.FLOAT64;
            int maxDigits = single ? 9 : 17;
            for (int p = 1; p < maxDigits; p++) {
                BigDecimal r = exact.round(new MathContext(p, RoundingMode.HALF_EVEN));
                if (single ? r.floatValue() == (float) v : r.doubleValue() == v) {
                    return r;
                }
            }
            return exact.round(new MathContext(maxDigits, RoundingMode.HALF_EVEN));
        }

        private static boolean integral(DType t) {
            return t == DType.INT32 || t == DType.INT64 || t == DType.INT8 || t == DType.UINT8;
        }

        /** {@code str(np.float32(v))} (or the type's scalar): positional for 1e-4 <= |v| < 1e16, else scientific. */
        static String scalar(double v, DType t) {
            if (integral(t)) {
                return Long.toString((long) v);
            }
            if (Double.isNaN(v)) {
                return "nan";
            }
            if (Double.isInfinite(v)) {
                return v > 0 ? "inf" : "-inf";
            }
            if (v == 0) {
                return (1 / v < 0) ? "-0.0" : "0.0";
            }
            BigDecimal d = shortest(v, t);
            double a = Math.abs(v);
            if (a >= 1e-4 && a < 1e16) {
                String s = d.stripTrailingZeros().toPlainString();
                return s.contains(".") ? s : s + ".0";
            }
            return scientific(d);
        }

        /** Scalar scientific text: unique mantissa digits, "1e-05", "1.5e+16". */
        private static String scientific(BigDecimal d) {
            BigDecimal s = d.stripTrailingZeros();
            String digits = s.unscaledValue().abs().toString();
            int exp = exponent(s);
            StringBuilder b = new StringBuilder(s.signum() < 0 ? "-" : "").append(digits.charAt(0));
            if (digits.length() > 1) {
                b.append('.').append(digits, 1, digits.length());
            }
            String e = Integer.toString(Math.abs(exp));
            return b.append('e').append(exp < 0 ? '-' : '+').append(e.length() < 2 ? "0" : "").append(e).toString();
        }

        /** Digits of v rounded to at most 8 fractional digits, unique (NumPy's "maxprec" float mode): [int part, fraction]. */
        private static String[] positionalParts(double v, DType t) {
            BigDecimal d = shortest(v, t);
            if (d.scale() > 8) {
                d = d.setScale(8, RoundingMode.HALF_EVEN);
            }
            String s = d.stripTrailingZeros().toPlainString();
            if (d.signum() == 0 && (1 / v < 0 || v < 0)) {
                s = "-0";
            }
            int dot = s.indexOf('.');
            return dot < 0 ? new String[] {s, ""} : new String[] {s.substring(0, dot), s.substring(dot + 1)};
        }

        /**
         * {@code str(ndarray)}: NumPy's array2string with its defaults (precision 8, maxprec,
         * line width 75, summarising arrays above 1000 elements to 3 edge items).
         */
        static String array(double[] v, long[] shape, DType t) {
            if (shape.length == 0) {
                return scalar(v[0], t);
            }
            if (v.length == 0) {
                return "[]";
            }
            boolean summary = v.length > 1000;
            // the elements that are printed decide the common format
            List<Integer> shown = new ArrayList<>();
            collect(shape, 0, 0, summary, shown);
            Function<Double, String> fmt = formatter(v, shown, t);
            StringBuilder out = new StringBuilder();
            String s = recurse(v, shape, 0, 0, " ", 75, summary, fmt);
            return out.append(s).toString();
        }

        private static long stride(long[] shape, int axis) {
            long s = 1;
            for (int i = axis + 1; i < shape.length; i++) {
                s *= shape[i];
            }
            return s;
        }

        private static void collect(long[] shape, int axis, long base, boolean summary, List<Integer> out) {
            long n = shape[axis];
            long st = stride(shape, axis);
            for (long i = 0; i < n; i++) {
                if (summary && n > 6 && i == 3) {
                    i = n - 3;
                }
                if (axis == shape.length - 1) {
                    out.add((int) (base + i));
                } else {
                    collect(shape, axis + 1, base + i * st, summary, out);
                }
            }
        }

        private static Function<Double, String> formatter(double[] v, List<Integer> shown, DType t) {
            if (integral(t)) {
                int w = 0;
                for (int i : shown) {
                    w = Math.max(w, Long.toString((long) v[i]).length());
                }
                int width = w;
                return x -> pad(Long.toString((long) x.doubleValue()), width);
            }
            double maxAbs = 0;
            double minAbs = Double.MAX_VALUE;
            boolean anyNonZero = false;
            boolean anyNonFinite = false;
            for (int i : shown) {
                double x = v[i];
                if (!Double.isFinite(x)) {
                    anyNonFinite = true;
                    continue;
                }
                if (x != 0) {
                    anyNonZero = true;
                    maxAbs = Math.max(maxAbs, Math.abs(x));
                    minAbs = Math.min(minAbs, Math.abs(x));
                }
            }
            boolean exp = anyNonZero && (maxAbs >= 1e8 || minAbs < 1e-4 || maxAbs / minAbs > 1000);
            if (exp) {
                // NumPy: every mantissa gets the largest number of unique fraction digits (at most
                // 8) of the printed elements, extra digits coming from the exact value
                int precision = 0;
                int expDigits = 2;
                boolean neg = false;
                boolean negInf = false;
                for (int i : shown) {
                    double x = v[i];
                    if (!Double.isFinite(x)) {
                        negInf |= x == Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    if (x != 0) {
                        BigDecimal d = shortest(x, t).stripTrailingZeros();
                        precision = Math.max(precision, Math.min(8, d.precision() - 1));
                    }
                    neg |= x < 0 || (x == 0 && 1 / x < 0);
                }
                for (int i : shown) {
                    if (Double.isFinite(v[i]) && v[i] != 0) {
                        int e = exponent(round(v[i], precision + 1));
                        expDigits = Math.max(expDigits, Integer.toString(Math.abs(e)).length());
                    }
                }
                int p = precision;
                int ed = expDigits;
                int padLeft = Math.max(neg ? 2 : 1, 3 + (negInf ? 1 : 0) - (ed + 2 + p) - 1);
                int width = padLeft + 1 + ed + 2 + p;
                return x -> {
                    if (!Double.isFinite(x)) {
                        return pad(nonFinite(x), width);
                    }
                    BigDecimal d = round(x, p + 1);
                    String digits = d.unscaledValue().abs().toString();
                    int e = x == 0 ? 0 : exponent(d);
                    StringBuilder m = new StringBuilder();
                    m.append(d.signum() < 0 || (x == 0 && 1 / x < 0) ? "-" : "").append(digits.charAt(0)).append('.');
                    for (int i = 1; i <= p; i++) {
                        m.append(i < digits.length() ? digits.charAt(i) : '0');
                    }
                    String es = Integer.toString(Math.abs(e));
                    m.append('e').append(e < 0 ? '-' : '+').append("0".repeat(Math.max(0, ed - es.length()))).append(es);
                    return pad(m.toString(), width);
                };
            }
            int padLeft = 0;
            int padRight = 0;
            for (int i : shown) {
                if (!Double.isFinite(v[i])) {
                    continue;
                }
                String[] p = positionalParts(v[i], t);
                padLeft = Math.max(padLeft, p[0].length());
                padRight = Math.max(padRight, p[1].length());
            }
            if (anyNonFinite) {
                boolean negInf = false;
                for (int i : shown) {
                    negInf |= v[i] == Double.NEGATIVE_INFINITY;
                }
                padLeft = Math.max(padLeft, 3 + (negInf ? 1 : 0) - padRight - 1);
            }
            int pl = padLeft;
            int pr = padRight;
            return x -> {
                if (!Double.isFinite(x)) {
                    return pad(nonFinite(x), pl + 1 + pr);
                }
                String[] p = positionalParts(x, t);
                StringBuilder b = new StringBuilder();
                for (int i = p[0].length(); i < pl; i++) {
                    b.append(' ');
                }
                b.append(p[0]).append('.').append(p[1]);
                for (int i = p[1].length(); i < pr; i++) {
                    b.append(' ');
                }
                return b.toString();
            };
        }

        /** The exact value of x rounded to {@code digits} significant digits. */
        private static BigDecimal round(double x, int digits) {
            return x == 0 ? BigDecimal.ZERO : new BigDecimal(x).round(new MathContext(digits, RoundingMode.HALF_EVEN));
        }

        /** Decimal exponent of a nonzero value (1.5e-05 -> -5). */
        private static int exponent(BigDecimal d) {
            return d.precision() - d.scale() - 1;
        }

        private static String nonFinite(double x) {
            return Double.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
        }

        private static String pad(String s, int width) {
            StringBuilder b = new StringBuilder();
            for (int i = s.length(); i < width; i++) {
                b.append(' ');
            }
            return b.append(s).toString();
        }

        /** NumPy's _formatArray recursion (legacy=False), separator ' '. */
        private static String recurse(double[] v, long[] shape, int axis, long base, String hanging, int width, boolean summary,
                Function<Double, String> fmt) {
            long n = shape[axis];
            long st = stride(shape, axis);
            int axesLeft = shape.length - axis;
            String nextHanging = hanging + " ";
            int nextWidth = width - 1;
            boolean showSummary = summary && 6 < n;
            long leading = showSummary ? 3 : 0;
            long trailing = showSummary ? 3 : n;
            StringBuilder s = new StringBuilder();
            if (axesLeft == 1) {
                int elemWidth = width - 1;
                StringBuilder line = new StringBuilder(hanging);
                for (long i = 0; i < leading; i++) {
                    extend(s, line, fmt.apply(v[(int) (base + i)]), elemWidth, hanging);
                    line.append(' ');
                }
                if (showSummary) {
                    extend(s, line, "...", elemWidth, hanging);
                    line.append(' ');
                }
                for (long i = trailing; i > 1; i--) {
                    extend(s, line, fmt.apply(v[(int) (base + n - i)]), elemWidth, hanging);
                    line.append(' ');
                }
                extend(s, line, fmt.apply(v[(int) (base + n - 1)]), elemWidth, hanging);
                s.append(line);
            } else {
                String lineSep = "\n".repeat(axesLeft - 1);
                for (long i = 0; i < leading; i++) {
                    s.append(hanging).append(recurse(v, shape, axis + 1, base + i * st, nextHanging, nextWidth, summary, fmt)).append(lineSep);
                }
                if (showSummary) {
                    s.append(hanging).append("...").append(lineSep);
                }
                for (long i = trailing; i > 1; i--) {
                    s.append(hanging).append(recurse(v, shape, axis + 1, base + (n - i) * st, nextHanging, nextWidth, summary, fmt))
                            .append(lineSep);
                }
                s.append(hanging).append(recurse(v, shape, axis + 1, base + (n - 1) * st, nextHanging, nextWidth, summary, fmt));
            }
            return "[" + s.substring(hanging.length()) + "]";
        }

        private static void extend(StringBuilder s, StringBuilder line, String word, int width, String hanging) {
            boolean wrap = line.length() + word.length() > width && line.length() > hanging.length();
            if (wrap) {
                int end = line.length();
                while (end > 0 && line.charAt(end - 1) == ' ') {
                    end--;
                }
                s.append(line, 0, end).append('\n');
                line.setLength(0);
                line.append(hanging);
            }
            line.append(word);
        }
    }
}
