package dev.kiln.init;

import dev.kiln.internal.Json;
import dev.kiln.ndarray.NDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

/**
 * Base class of the weight initializers, MXNet's {@code mx.init.Initializer}
 * ({@code python/mxnet/initializer.py}).
 *
 * <p><b>Dispatch</b> ({@link #init(InitDesc, NDArray)}, MXNet's {@code __call__}): when the
 * variable carries an {@code __init__} attribute (a JSON string {@code ["<name>", {kwargs}]}, set
 * by {@code Symbol.variable(name, Map.of("init", ...))} or attached by an operator such as
 * LeakyReLU(prelu) and BatchNorm), that initializer's <em>weight rule</em> is applied whatever
 * the name; otherwise the name's suffix decides, in this order: {@code weight} → this
 * initializer's weight rule, {@code bias} → 0, {@code gamma} → 1, {@code beta} → 0, {@code min}
 * → 0, {@code max} → 1, {@code weight_quantize} → random integers in [-127, 127], {@code
 * bias_quantize} → 0, anything else → {@link IllegalArgumentException}. So a global {@code
 * Constant(3)} only changes {@code *weight} arrays: biases stay 0 and gammas 1, as in MXNet.
 * {@link #initLegacy(String, NDArray)} is MXNet's older plain-name dispatch.
 *
 * <p><b>Registry</b>: {@link #create(Object)} accepts an instance, a registered name ({@code
 * zero}/{@code zeros}, {@code one}/{@code ones}, {@code constant}, {@code uniform}, {@code
 * normal}, {@code orthogonal}, {@code xavier}, {@code msraprelu}, {@code bilinear}, {@code
 * lstmbias}; case-insensitive), a JSON string {@code ["xavier", {"magnitude": 2}]} or {@code
 * {"initializer": "xavier", ...}}, a {@code List} or a {@code Map} of the same shape. {@link
 * #dumps()} writes the JSON form back ({@code ["xavier", {"rnd_type": "uniform", "factor_type":
 * "avg", "magnitude": 3}]}), keeping Python's int/float distinction: {@code new Constant(1)}
 * dumps {@code 1}, {@code new Constant(1.0)} dumps {@code 1.0}. Two initializers are equal when
 * they are of the same class with the same keyword arguments (numbers compared by value).
 *
 * <p><b>Randomness</b>: every random fill draws a fresh 64-bit seed from one global generator and
 * runs the native generator ({@link NDArray#randomUniform}/{@link NDArray#randomNormal}) or a
 * {@link SplittableRandom} with it. {@link #seed(long)} resets that generator, like {@code
 * mx.random.seed}: after {@code Initializer.seed(s)} the same sequence of {@code init} calls on
 * arrays of the same shapes writes the same values. Before any call to {@code seed} the
 * generator is in the state {@code seed(0)} gives (MXNet's global seed also starts at 0), so runs
 * are reproducible by default. The values differ from MXNet's (different generators).
 *
 * <p><b>Ownership</b>: initializers never take ownership of the arrays they write; the target may
 * live on any device and have any dtype (values are produced on the CPU and copied). Temporary
 * arrays are created and closed inside each call.
 *
 * <p><b>Thread-safety</b>: initializers are immutable apart from the verbosity switch (which is
 * safely published); {@code init} may be called from several threads on different arrays. The
 * global seed generator is synchronised; with several threads, which call gets which seed depends
 * on scheduling.
 */
public abstract class Initializer {
    private static final Logger LOG = LoggerFactory.getLogger(Initializer.class);
    private static final AtomicBoolean LEGACY_WARNED = new AtomicBoolean();
    private static final Map<String, Function<Map<String, Object>, Initializer>> REGISTRY = new ConcurrentHashMap<>();
    private static final Object SEED_LOCK = new Object();
    private static SplittableRandom seedSource = new SplittableRandom(0);

    static {
        REGISTRY.put("zero", k -> { new Kwargs("zero", k).done(); return new Zero(); });
        REGISTRY.put("zeros", REGISTRY.get("zero"));
        REGISTRY.put("one", k -> { new Kwargs("one", k).done(); return new One(); });
        REGISTRY.put("ones", REGISTRY.get("one"));
        REGISTRY.put("constant", Constant::fromKwargs);
        REGISTRY.put("uniform", Uniform::fromKwargs);
        REGISTRY.put("normal", Normal::fromKwargs);
        REGISTRY.put("orthogonal", Orthogonal::fromKwargs);
        REGISTRY.put("xavier", Xavier::fromKwargs);
        REGISTRY.put("msraprelu", MSRAPrelu::fromKwargs);
        REGISTRY.put("bilinear", k -> { new Kwargs("bilinear", k).done(); return new Bilinear(); });
        REGISTRY.put("lstmbias", LSTMBias::fromKwargs);
    }

    private final Map<String, Object> kwargs;
    private volatile boolean verbose;
    private volatile Function<NDArray, String> printFunc;

    /**
     * Creates an initializer with its constructor's keyword arguments, in the order {@link
     * #dumps()} writes them. Numbers are normalised: integral types to {@link Long} (Python int),
     * {@link Float}/{@link Double} and other numbers to {@link Double} (Python float); lists and
     * maps are copied deeply.
     *
     * @param kwargs the keyword arguments (may be null for none)
     */
    protected Initializer(Map<String, ?> kwargs) {
        Map<String, Object> m = new LinkedHashMap<>();
        if (kwargs != null) {
            kwargs.forEach((k, v) -> m.put(k, normalize(v)));
        }
        this.kwargs = Collections.unmodifiableMap(m);
    }

    /** An initializer without keyword arguments. */
    protected Initializer() {
        this(null);
    }

    static Object normalize(Object v) {
        if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        if (v instanceof List<?> l) {
            List<Object> out = new ArrayList<>(l.size());
            for (Object o : l) {
                out.add(normalize(o));
            }
            return Collections.unmodifiableList(out);
        }
        if (v instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            m.forEach((k, x) -> out.put(String.valueOf(k), normalize(x)));
            return Collections.unmodifiableMap(out);
        }
        if (v == null || v instanceof String || v instanceof Boolean) {
            return v;
        }
        throw new IllegalArgumentException("initializer argument of type " + v.getClass().getName()
                + " cannot be serialised; use numbers, strings, booleans, lists or maps");
    }

    /** @return the constructor keyword arguments as {@link #dumps()} writes them, unmodifiable */
    public Map<String, Object> kwargs() {
        return kwargs;
    }

    // ---- seeding ---------------------------------------------------------------------------

    /**
     * Resets the global generator every random initializer draws its seeds from (like {@code
     * mx.random.seed(s)}); afterwards the same sequence of initialisations repeats the same values.
     *
     * @param seed any value
     */
    public static void seed(long seed) {
        synchronized (SEED_LOCK) {
            seedSource = new SplittableRandom(seed);
        }
    }

    /**
     * The next seed from the global generator; subclasses use it to seed their own draws.
     *
     * @return a 64-bit seed
     */
    protected static long nextSeed() {
        synchronized (SEED_LOCK) {
            return seedSource.nextLong();
        }
    }

    // ---- dispatch --------------------------------------------------------------------------

    /**
     * Initialises {@code arr} for the parameter described by {@code desc} (MXNet's {@code
     * __call__}): the {@code __init__} attribute first, then the name-suffix rules (see the class
     * comment). {@code desc}'s global initializer defaults to this one.
     *
     * @param desc the parameter
     * @param arr the array to write (borrowed: not closed, any device, any dtype)
     * @throws IllegalArgumentException for a name matching no rule (MXNet's "Unknown
     *     initialization pattern" message), an invalid {@code __init__} attribute, or an array
     *     the rule cannot handle (e.g. Xavier on a vector)
     */
    public void init(InitDesc desc, NDArray arr) {
        Objects.requireNonNull(desc, "desc");
        Objects.requireNonNull(arr, "arr");
        if (desc.globalInit() == null) {
            desc = desc.withGlobalInit(this);
        }
        String init = desc.attrs().get("__init__");
        if (init != null && !init.isEmpty()) {
            Initializer named;
            try {
                named = create(init);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("parameter " + desc.name() + ": invalid __init__ attribute " + init
                        + ": " + e.getMessage(), e);
            }
            named.initWeight(desc, arr);
            verbosePrint(desc, init, arr);
            return;
        }
        String name = desc.name();
        if (name.endsWith("weight")) {
            initWeight(desc, arr);
            verbosePrint(desc, "weight", arr);
        } else if (name.endsWith("bias")) {
            initBias(desc, arr);
            verbosePrint(desc, "bias", arr);
        } else if (name.endsWith("gamma")) {
            initGamma(desc, arr);
            verbosePrint(desc, "gamma", arr);
        } else if (name.endsWith("beta")) {
            initBeta(desc, arr);
            verbosePrint(desc, "beta", arr);
        } else if (name.endsWith("min")) {
            initZero(desc, arr);
            verbosePrint(desc, "min", arr);
        } else if (name.endsWith("max")) {
            initOne(desc, arr);
            verbosePrint(desc, "max", arr);
        } else if (name.endsWith("weight_quantize")) {
            initQuantizedWeight(desc, arr);
            verbosePrint(desc, "weight_quantize", arr);
        } else if (name.endsWith("bias_quantize")) {
            initQuantizedBias(desc, arr);
            verbosePrint(desc, "bias_quantize", arr);
        } else {
            initDefault(desc, arr);
        }
    }

    /**
     * MXNet's deprecated plain-name path ({@code init("fc_weight", arr)}): {@code upsampling*} →
     * bilinear; {@code stn_loc*weight} → 0; {@code stn_loc*bias} → [1, 0, 0, 0, 1, 0]; {@code
     * *bias} → 0; {@code *gamma} → 1; {@code *beta} → 0; {@code *weight} → the weight rule;
     * {@code *moving_mean} → 0; {@code *moving_var} → 1; {@code *moving_inv_var} → 0; {@code
     * *moving_avg} → 0; {@code *min} → 0; {@code *max} → 1; else the unknown-pattern error.
     * Attributes are not consulted. Logs a deprecation warning once per JVM.
     *
     * @param name the parameter name
     * @param arr the array to write (borrowed)
     * @throws IllegalArgumentException for a name matching no rule
     */
    public void initLegacy(String name, NDArray arr) {
        if (name == null) {
            throw new IllegalArgumentException("name must be a string, got null");
        }
        Objects.requireNonNull(arr, "arr");
        if (LEGACY_WARNED.compareAndSet(false, true)) {
            LOG.warn("Calling an initializer with a plain name has been deprecated; use init(new InitDesc(...), NDArray) instead.");
        }
        InitDesc d = new InitDesc(name, null, this);
        if (name.startsWith("upsampling")) {
            initBilinear(d, arr);
        } else if (name.startsWith("stn_loc") && name.endsWith("weight")) {
            initZero(d, arr);
        } else if (name.startsWith("stn_loc") && name.endsWith("bias")) {
            initLocBias(d, arr);
        } else if (name.endsWith("bias")) {
            initBias(d, arr);
        } else if (name.endsWith("gamma")) {
            initGamma(d, arr);
        } else if (name.endsWith("beta")) {
            initBeta(d, arr);
        } else if (name.endsWith("weight")) {
            initWeight(d, arr);
        } else if (name.endsWith("moving_mean")) {
            initZero(d, arr);
        } else if (name.endsWith("moving_var")) {
            initOne(d, arr);
        } else if (name.endsWith("moving_inv_var")) {
            initZero(d, arr);
        } else if (name.endsWith("moving_avg")) {
            initZero(d, arr);
        } else if (name.endsWith("min")) {
            initZero(d, arr);
        } else if (name.endsWith("max")) {
            initOne(d, arr);
        } else {
            initDefault(d, arr);
        }
    }

    // ---- rules (MXNet's _init_* methods) ---------------------------------------------------

    /**
     * The initializer's own rule, used for {@code *weight} names and for any name whose variable
     * names this initializer in {@code __init__}.
     *
     * @param desc the parameter
     * @param arr the array to write (borrowed)
     */
    protected abstract void initWeight(InitDesc desc, NDArray arr);

    /**
     * Bias rule: 0.
     *
     * @param desc the parameter
     * @param arr the array (borrowed)
     */
    protected void initBias(InitDesc desc, NDArray arr) {
        Fill.constant(arr, 0.0);
    }

    /**
     * Gamma rule: 1.
     *
     * @param desc the parameter
     * @param arr the array (borrowed)
     */
    protected void initGamma(InitDesc desc, NDArray arr) {
        Fill.constant(arr, 1.0);
    }

    /**
     * Beta rule: 0.
     *
     * @param desc the parameter
     * @param arr the array (borrowed)
     */
    protected void initBeta(InitDesc desc, NDArray arr) {
        Fill.constant(arr, 0.0);
    }

    /**
     * Writes 0.
     *
     * @param desc the parameter
     * @param arr the array (borrowed)
     */
    protected void initZero(InitDesc desc, NDArray arr) {
        Fill.constant(arr, 0.0);
    }

    /**
     * Writes 1.
     *
     * @param desc the parameter
     * @param arr the array (borrowed)
     */
    protected void initOne(InitDesc desc, NDArray arr) {
        Fill.constant(arr, 1.0);
    }

    /**
     * Quantized-weight rule: independent uniform integers in [-127, 127] (MXNet draws a single
     * integer in [-127, 126] and broadcasts it to every element; see docs/mxnet-differences.md).
     *
     * @param desc the parameter
     * @param arr the array (borrowed)
     */
    protected void initQuantizedWeight(InitDesc desc, NDArray arr) {
        int n = Fill.javaSize(arr, "parameter " + desc.name());
        SplittableRandom r = new SplittableRandom(nextSeed());
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = r.nextInt(-127, 128);
        }
        Fill.values(arr, v);
    }

    /**
     * Quantized-bias rule: 0.
     *
     * @param desc the parameter
     * @param arr the array (borrowed)
     */
    protected void initQuantizedBias(InitDesc desc, NDArray arr) {
        Fill.constant(arr, 0.0);
    }

    /**
     * The bilinear up-sampling kernel (see {@link Bilinear}).
     *
     * @param desc the parameter
     * @param arr the array (borrowed)
     */
    protected void initBilinear(InitDesc desc, NDArray arr) {
        Bilinear.fill(desc, arr);
    }

    /**
     * Spatial-transformer localisation bias: [1, 0, 0, 0, 1, 0] (the identity transform).
     *
     * @param desc the parameter
     * @param arr the array (borrowed); its first dimension must be 6
     * @throws IllegalArgumentException otherwise
     */
    protected void initLocBias(InitDesc desc, NDArray arr) {
        if (arr.shape().ndim() < 1 || arr.shape().get(0) != 6) {
            throw new IllegalArgumentException("parameter " + desc.name() + ": the stn_loc bias must have 6 rows, got shape "
                    + Shapes.py(arr.shape().dims()));
        }
        Constant.broadcastAssign(desc, arr, new double[] {1, 0, 0, 0, 1, 0}, new long[] {6});
    }

    /**
     * Called for names that match no rule.
     *
     * @param desc the parameter
     * @param arr the array
     * @throws IllegalArgumentException always, with MXNet's message
     */
    protected void initDefault(InitDesc desc, NDArray arr) {
        throw new IllegalArgumentException("Unknown initialization pattern for " + desc.name() + ". "
                + "Default initialization is now limited to \"weight\", \"bias\", \"gamma\" (1.0), and \"beta\" (0.0)."
                + "Please use mx.sym.Variable(init=mx.init.*) to set initialization pattern");
    }

    // ---- verbosity -------------------------------------------------------------------------

    /**
     * Switches logging of each initialised array on or off, with the default statistic {@code
     * norm(x)/sqrt(size(x))}. Lines go to SLF4J at INFO: {@code Initialized fc1_weight as weight:
     * 0.0403}.
     *
     * @param verbose on or off
     * @return this initializer
     */
    public Initializer setVerbosity(boolean verbose) {
        return setVerbosity(verbose, null);
    }

    /**
     * Switches logging on or off with a custom statistic.
     *
     * @param verbose on or off
     * @param printFunc maps the initialised array (borrowed; do not close it) to the text logged,
     *     or null for {@code norm(x)/sqrt(size(x))}
     * @return this initializer
     */
    public Initializer setVerbosity(boolean verbose, Function<NDArray, String> printFunc) {
        this.printFunc = printFunc != null ? printFunc : Initializer::rmsStat;
        this.verbose = verbose;
        return this;
    }

    /** @return whether verbose logging is on */
    public boolean isVerbose() {
        return verbose;
    }

    static String rmsStat(NDArray x) {
        double[] d = x.toDoubleArray();
        double s = 0;
        for (double v : d) {
            s += v * v;
        }
        return Float.toString((float) (Math.sqrt(s) / Math.sqrt(Math.max(1, d.length))));
    }

    /**
     * Logs {@code Initialized <desc> as <init>: <stat>} when verbose.
     *
     * @param desc the parameter
     * @param init the rule or {@code __init__} string applied
     * @param arr the array written
     */
    protected void verbosePrint(InitDesc desc, String init, NDArray arr) {
        Function<NDArray, String> f = printFunc;
        if (verbose && f != null) {
            LOG.info("Initialized {} as {}: {}", desc, init, f.apply(arr));
        }
    }

    // ---- serialisation and registry --------------------------------------------------------

    /**
     * The name {@link #dumps()} writes: the lower-case simple class name, as MXNet.
     *
     * @return the registered name
     */
    protected String dumpName() {
        return getClass().getSimpleName().toLowerCase(Locale.ROOT);
    }

    /**
     * Serialises this initializer as Python's {@code json.dumps([name, kwargs])} does, e.g.
     * {@code ["normal", {"sigma": 0.5}]}; {@link #create(Object)} reads it back.
     *
     * @return the JSON text
     * @throws UnsupportedOperationException for {@link Mixed} and {@link Load}, which MXNet cannot
     *     serialise either
     */
    public String dumps() {
        List<Object> l = new ArrayList<>(2);
        l.add(dumpName());
        l.add(kwargs);
        return PyJson.dumps(l);
    }

    /**
     * Registers a custom initializer under a name (case-insensitive), like {@code
     * mx.init.register}; it can then be named in {@link #create(Object)} and in {@code __init__}
     * attributes. Re-registering a name replaces it.
     *
     * @param name the name, normally what {@link #dumpName()} of the class returns
     * @param factory builds an instance from keyword arguments (JSON-parsed: {@link Long} for
     *     integers, {@link Double} for other numbers, {@code List}, {@code Map}, {@link String},
     *     {@link Boolean})
     * @throws IllegalArgumentException for a null or empty name or a null factory
     */
    public static void register(String name, Function<Map<String, Object>, Initializer> factory) {
        if (name == null || name.isEmpty() || factory == null) {
            throw new IllegalArgumentException("register: name and factory are required");
        }
        REGISTRY.put(name.toLowerCase(Locale.ROOT), factory);
    }

    /**
     * Creates an initializer from a registered name and keyword arguments.
     *
     * @param name the registered name (case-insensitive)
     * @param kwargs the keyword arguments, or null
     * @return a new initializer
     * @throws IllegalArgumentException for an unknown name or bad arguments
     */
    public static Initializer create(String name, Map<String, ?> kwargs) {
        if (name == null) {
            throw new IllegalArgumentException("initializer name is null");
        }
        String key = name.toLowerCase(Locale.ROOT);
        Function<Map<String, Object>, Initializer> f = REGISTRY.get(key);
        if (f == null) {
            throw new IllegalArgumentException(key + " is not registered. Please register with Initializer.register first"
                    + " (registered: " + String.join(", ", new TreeSet<>(REGISTRY.keySet())) + ")");
        }
        Map<String, Object> k = new LinkedHashMap<>();
        if (kwargs != null) {
            kwargs.forEach(k::put);
        }
        return f.apply(k);
    }

    /**
     * Creates an initializer from a specification, like MXNet's {@code mx.init.create}: an
     * {@code Initializer} (returned as is), a registered name ({@code "xavier"}), a JSON string
     * {@code ["xavier", {"magnitude": 2}]} or {@code {"initializer": "xavier", "magnitude": 2}},
     * a {@code List} {@code [name, kwargs]} or a {@code Map} with an {@code "initializer"} key.
     *
     * @param spec the specification
     * @return the initializer
     * @throws IllegalArgumentException for null, malformed JSON, an unknown name or bad arguments
     */
    public static Initializer create(Object spec) {
        if (spec instanceof Initializer i) {
            return i;
        }
        if (spec == null) {
            throw new IllegalArgumentException("initializer specification is null");
        }
        if (spec instanceof String s) {
            String t = s.trim();
            if (t.startsWith("[") || t.startsWith("{")) {
                return create(Json.parse(t));
            }
            return create(t, null);
        }
        if (spec instanceof List<?> l) {
            if (l.size() != 2 || !(l.get(0) instanceof String) || !(l.get(1) instanceof Map)) {
                throw new IllegalArgumentException("initializer specification must be [name, {kwargs}], got " + l);
            }
            return create((String) l.get(0), asKwargs((Map<?, ?>) l.get(1)));
        }
        if (spec instanceof Map<?, ?> m) {
            Map<String, Object> k = asKwargs(m);
            Object name = k.remove("initializer");
            if (!(name instanceof String)) {
                throw new IllegalArgumentException("initializer specification map needs an \"initializer\" name, got " + m);
            }
            return create((String) name, k);
        }
        throw new IllegalArgumentException("cannot create an initializer from " + spec.getClass().getName());
    }

    private static Map<String, Object> asKwargs(Map<?, ?> m) {
        Map<String, Object> k = new LinkedHashMap<>();
        m.forEach((a, b) -> k.put(String.valueOf(a), b));
        return k;
    }

    // ---- equality --------------------------------------------------------------------------

    /** Same class and equal keyword arguments (numbers by value, so 3 equals 3.0 as in Python). */
    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        return o instanceof Initializer other && other.getClass() == getClass() && deepEquals(kwargs, other.kwargs);
    }

    @Override
    public int hashCode() {
        return getClass().hashCode() * 31 + deepHash(kwargs);
    }

    private static boolean deepEquals(Object a, Object b) {
        if (a instanceof Number x && b instanceof Number y) {
            double dx = x.doubleValue();
            double dy = y.doubleValue();
            return dx == dy || (Double.isNaN(dx) && Double.isNaN(dy));
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) {
                return false;
            }
            for (int i = 0; i < x.size(); i++) {
                if (!deepEquals(x.get(i), y.get(i))) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
            if (!x.keySet().equals(y.keySet())) {
                return false;
            }
            for (Object k : x.keySet()) {
                if (!deepEquals(x.get(k), y.get(k))) {
                    return false;
                }
            }
            return true;
        }
        return Objects.equals(a, b);
    }

    private static int deepHash(Object a) {
        if (a instanceof Number x) {
            double d = x.doubleValue();
            return d == 0 ? 0 : Double.hashCode(d);
        }
        if (a instanceof List<?> x) {
            int h = 1;
            for (Object o : x) {
                h = h * 31 + deepHash(o);
            }
            return h;
        }
        if (a instanceof Map<?, ?> x) {
            int h = 0;
            for (Map.Entry<?, ?> e : x.entrySet()) {
                h += Objects.hashCode(e.getKey()) ^ deepHash(e.getValue());
            }
            return h;
        }
        return Objects.hashCode(a);
    }

    /** @return the {@link #dumps()} form where available, else the class name */
    @Override
    public String toString() {
        try {
            return dumps();
        } catch (RuntimeException e) {
            return getClass().getSimpleName();
        }
    }
}
