package dev.kiln.metric;

import dev.kiln.internal.Json;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The metric registry and MXNet's {@code mx.metric.create}.
 *
 * <p>Registered names (case-insensitive): {@code accuracy}, {@code acc}, {@code topkaccuracy},
 * {@code top_k_accuracy}, {@code top_k_acc}, {@code f1}, {@code mcc}, {@code perplexity}, {@code
 * mae}, {@code mse}, {@code rmse}, {@code crossentropy}, {@code ce}, {@code
 * negativeloglikelihood}, {@code nll_loss}, {@code pearsoncorrelation}, {@code pearsonr}, {@code
 * pcc}, {@code loss}, {@code torch}, {@code caffe}, {@code custommetric}, {@code
 * compositeevalmetric}, {@code composite}; more with {@link #register}.
 *
 * <p>Arguments follow Python: {@code args} are positional constructor arguments in MXNet's order,
 * optionally ending with one {@code Map<String, ?>} of keyword arguments under MXNet's names:
 *
 * <pre>{@code
 * Metrics.create("acc");                                  // Accuracy()
 * Metrics.create("acc", Map.of("axis", 0));               // Accuracy(axis=0)
 * Metrics.create("top_k_accuracy", 5);                    // TopKAccuracy(top_k=5)
 * Metrics.create("perplexity", -1);                       // Perplexity(ignore_label=-1)
 * Metrics.create(List.of("acc", "ce"));                   // CompositeEvalMetric of both
 * Metrics.create(Map.of("metric", "f1", "average", "micro"));
 * Metrics.create("[\"acc\", {\"axis\": 0}]");             // JSON [name, kwargs]
 * Metrics.create(Json.write(m.getConfig()));              // JSON kwargs with "metric"
 * Metrics.create((label, pred) -> label.get(0));          // CustomMetric
 * }</pre>
 *
 * <p>Thread-safety: {@link #create} and {@link #register} may be called from any thread; the
 * metrics created are not thread-safe. Ownership: created metrics hold no native memory.
 */
public final class Metrics {
    private static final Map<String, MetricFactory> REGISTRY = new ConcurrentHashMap<>();

    private static final List<String> BASE = List.of("name", "output_names", "label_names");

    static {
        register(Metrics::accuracy, "accuracy", "acc");
        register(Metrics::topK, "topkaccuracy", "top_k_accuracy", "top_k_acc");
        register((a, k) -> {
            Args b = Args.bind("F1", List.of("name", "output_names", "label_names", "average"), 0, a, k);
            return new F1(b.stringArg("name", "f1"), b.names("output_names"), b.names("label_names"), b.stringArg("average", "macro"));
        }, "f1");
        register((a, k) -> {
            Args b = Args.bind("MCC", List.of("name", "output_names", "label_names", "average"), 0, a, k);
            return new MCC(b.stringArg("name", "mcc"), b.names("output_names"), b.names("label_names"), b.stringArg("average", "macro"));
        }, "mcc");
        register((a, k) -> {
            Args b = Args.bind("Perplexity", List.of("ignore_label", "axis", "name", "output_names", "label_names"), 1, a, k);
            return new Perplexity(b.numberOrNull("ignore_label"), b.intArg("axis", -1), b.stringArg("name", "perplexity"),
                    b.names("output_names"), b.names("label_names"));
        }, "perplexity");
        register((a, k) -> {
            Args b = Args.bind("MAE", BASE, 0, a, k);
            return new MAE(b.stringArg("name", "mae"), b.names("output_names"), b.names("label_names"));
        }, "mae");
        register((a, k) -> {
            Args b = Args.bind("MSE", BASE, 0, a, k);
            return new MSE(b.stringArg("name", "mse"), b.names("output_names"), b.names("label_names"));
        }, "mse");
        register((a, k) -> {
            Args b = Args.bind("RMSE", BASE, 0, a, k);
            return new RMSE(b.stringArg("name", "rmse"), b.names("output_names"), b.names("label_names"));
        }, "rmse");
        register((a, k) -> {
            Args b = Args.bind("CrossEntropy", List.of("eps", "name", "output_names", "label_names"), 0, a, k);
            return new CrossEntropy(b.doubleArg("eps", 1e-12), b.stringArg("name", "cross-entropy"),
                    b.names("output_names"), b.names("label_names"));
        }, "crossentropy", "ce");
        register((a, k) -> {
            Args b = Args.bind("NegativeLogLikelihood", List.of("eps", "name", "output_names", "label_names"), 0, a, k);
            return new NegativeLogLikelihood(b.doubleArg("eps", 1e-12), b.stringArg("name", "nll-loss"),
                    b.names("output_names"), b.names("label_names"));
        }, "negativeloglikelihood", "nll_loss");
        register((a, k) -> {
            Args b = Args.bind("PearsonCorrelation", List.of("name", "output_names", "label_names", "average"), 0, a, k);
            return new PearsonCorrelation(b.stringArg("name", "pearsonr"), b.names("output_names"), b.names("label_names"),
                    b.stringArg("average", "macro"));
        }, "pearsoncorrelation", "pearsonr");
        register((a, k) -> {
            Args b = Args.bind("PCC", List.of("name", "output_names", "label_names", "has_global_stats"), 0, a, k);
            return new PCC(b.stringArg("name", "pcc"), b.names("output_names"), b.names("label_names"), b.boolArg("has_global_stats", true));
        }, "pcc");
        register((a, k) -> {
            Args b = Args.bind("Loss", BASE, 0, a, k);
            return new Loss(b.stringArg("name", "loss"), b.names("output_names"), b.names("label_names"));
        }, "loss");
        register((a, k) -> {
            Args b = Args.bind("Torch", BASE, 0, a, k);
            return new Torch(b.stringArg("name", "torch"), b.names("output_names"), b.names("label_names"));
        }, "torch");
        register((a, k) -> {
            Args b = Args.bind("Caffe", BASE, 0, a, k);
            return new Caffe(b.stringArg("name", "caffe"), b.names("output_names"), b.names("label_names"));
        }, "caffe");
        register(Metrics::custom, "custommetric");
        register((a, k) -> {
            Args b = Args.bind("CompositeEvalMetric", List.of("metrics", "name", "output_names", "label_names"), 0, a, k);
            return new CompositeEvalMetric(b.listArg("metrics"), b.stringArg("name", "composite"),
                    b.names("output_names"), b.names("label_names"));
        }, "compositeevalmetric", "composite");
    }

    private Metrics() {}

    private static EvalMetric accuracy(List<Object> a, Map<String, Object> k) {
        Args b = Args.bind("Accuracy", List.of("axis", "name", "output_names", "label_names"), 0, a, k);
        return new Accuracy(b.intArg("axis", 1), b.stringArg("name", "accuracy"), b.names("output_names"), b.names("label_names"));
    }

    private static EvalMetric topK(List<Object> a, Map<String, Object> k) {
        Args b = Args.bind("TopKAccuracy", List.of("top_k", "name", "output_names", "label_names"), 0, a, k);
        return new TopKAccuracy(b.intArg("top_k", 1), b.stringArg("name", "top_k_accuracy"), b.names("output_names"), b.names("label_names"));
    }

    private static EvalMetric custom(List<Object> a, Map<String, Object> k) {
        Args b = Args.bind("CustomMetric", List.of("feval", "name", "allow_extra_outputs", "output_names", "label_names"), 1, a, k);
        Object f = b.raw("feval");
        String name = b.stringArg("name", null);
        boolean extra = b.boolArg("allow_extra_outputs", false);
        if (f instanceof CustomMetric.Feval fe) {
            return new CustomMetric(fe, name, extra, b.names("output_names"), b.names("label_names"));
        }
        if (f instanceof CustomMetric.SumNumFeval fs) {
            return CustomMetric.ofSumNum(fs, name, extra, b.names("output_names"), b.names("label_names"));
        }
        throw new IllegalArgumentException("CustomMetric: feval must be a CustomMetric.Feval or CustomMetric.SumNumFeval, got "
                + (f == null ? "null" : f.getClass().getName()));
    }

    /**
     * Registers a metric under one or more names (stored lower-case); a later registration of
     * the same name replaces the earlier one.
     *
     * @param factory builds the metric from Python-style arguments
     * @param names the registry names
     */
    public static void register(MetricFactory factory, String... names) {
        if (factory == null || names.length == 0) {
            throw new IllegalArgumentException("register needs a factory and at least one name");
        }
        for (String n : names) {
            REGISTRY.put(n.toLowerCase(Locale.ROOT), factory);
        }
    }

    /** The registered names, sorted. */
    public static List<String> registeredNames() {
        return new ArrayList<>(new TreeSet<>(REGISTRY.keySet()));
    }

    /**
     * Creates a custom metric from a function, as MXNet's {@code create(callable, *args)}: the
     * overload that lets a lambda be passed directly.
     *
     * @param feval the function (see {@link CustomMetric})
     * @param args optional {@code name}, {@code allow_extra_outputs}, {@code output_names},
     *     {@code label_names}, positional and/or as a trailing keyword map
     * @return a new {@link CustomMetric}
     */
    public static EvalMetric create(CustomMetric.Feval feval, Object... args) {
        return create((Object) feval, args);
    }

    /**
     * Creates a metric, MXNet's {@code mx.metric.create(metric, *args, **kwargs)}.
     *
     * @param spec one of: an {@link EvalMetric} (returned as is; no args allowed); a {@link
     *     CustomMetric.Feval} or {@link CustomMetric.SumNumFeval} (a {@link CustomMetric}); a
     *     {@link List} of specs (a {@link CompositeEvalMetric}, each child created with the same
     *     args); a {@link Map} of keyword arguments whose {@code "metric"} entry names the metric
     *     (as {@link EvalMetric#getConfig()} returns); a JSON string {@code [name, {kwargs}]} or
     *     {@code {"metric": name, ...}}; or a registered name (case-insensitive)
     * @param args positional constructor arguments in MXNet's order ({@code null} stands for
     *     Python's None), optionally followed by one {@code Map<String, ?>} of keyword arguments
     * @return the metric
     * @throws IllegalArgumentException for an unknown name, a malformed spec or bad arguments
     */
    public static EvalMetric create(Object spec, Object... args) {
        // create("perplexity", null) passes a null array: read it as one null (None) argument
        List<Object> pos = args == null ? new ArrayList<>(java.util.Collections.singletonList(null)) : new ArrayList<>(Arrays.asList(args));
        Map<String, Object> kwargs = new LinkedHashMap<>();
        if (!pos.isEmpty() && pos.get(pos.size() - 1) instanceof Map<?, ?> m) {
            pos.remove(pos.size() - 1);
            kwargs.putAll(stringKeys(m, "keyword arguments"));
        }
        return create(spec, pos, kwargs);
    }

    private static EvalMetric create(Object spec, List<Object> pos, Map<String, Object> kwargs) {
        if (spec instanceof EvalMetric m) {
            if (!pos.isEmpty() || !kwargs.isEmpty()) {
                throw new IllegalArgumentException("metric '" + m.name() + "' is already an instance. Additional arguments are invalid");
            }
            return m;
        }
        if (spec instanceof CustomMetric.Feval || spec instanceof CustomMetric.SumNumFeval) {
            List<Object> a = new ArrayList<>();
            a.add(spec);
            a.addAll(pos);
            return custom(a, kwargs);
        }
        if (spec instanceof List<?> list) {
            CompositeEvalMetric c = new CompositeEvalMetric();
            for (Object child : list) {
                c.add(create(child, pos, kwargs));
            }
            return c;
        }
        if (spec instanceof Map<?, ?> m) {
            if (!pos.isEmpty() || !kwargs.isEmpty()) {
                throw new IllegalArgumentException("a metric given as a map takes no further arguments");
            }
            Map<String, Object> kw = new LinkedHashMap<>(stringKeys(m, "metric map"));
            if (!kw.containsKey("metric")) {
                throw new IllegalArgumentException("a metric map needs a \"metric\" entry naming the metric, got keys " + kw.keySet());
            }
            Object name = kw.remove("metric");
            return create(name, List.of(), kw);
        }
        if (spec instanceof CharSequence cs) {
            String s = cs.toString().strip();
            if (s.startsWith("[")) {
                requireNoArgs(pos, kwargs, s);
                List<Object> arr = Json.asArray(Json.parse(s), "metric JSON");
                if (arr.size() != 2 || !(arr.get(0) instanceof String)) {
                    throw new IllegalArgumentException("a metric JSON array must be [name, {kwargs}], got " + s);
                }
                return create(arr.get(0), List.of(), Json.asObject(arr.get(1), "metric JSON kwargs"));
            }
            if (s.startsWith("{")) {
                requireNoArgs(pos, kwargs, s);
                return create(Json.asObject(Json.parse(s), "metric JSON"), List.of(), Map.of());
            }
            MetricFactory f = REGISTRY.get(s.toLowerCase(Locale.ROOT));
            if (f == null) {
                throw new IllegalArgumentException("metric '" + s.toLowerCase(Locale.ROOT) + "' is not registered; registered names: " + registeredNames());
            }
            return f.create(pos, kwargs);
        }
        throw new IllegalArgumentException("cannot create a metric from " + (spec == null ? "null" : spec.getClass().getName())
                + "; expected a name, a JSON string, a Map, a List, an EvalMetric or a CustomMetric function");
    }

    private static void requireNoArgs(List<Object> pos, Map<String, Object> kwargs, String json) {
        if (!pos.isEmpty() || !kwargs.isEmpty()) {
            throw new IllegalArgumentException("a metric given as JSON takes no further arguments: " + json);
        }
    }

    private static Map<String, Object> stringKeys(Map<?, ?> m, String what) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!(e.getKey() instanceof String k)) {
                throw new IllegalArgumentException(what + " keys must be strings, got " + e.getKey());
            }
            out.put(k, e.getValue());
        }
        return out;
    }
}
