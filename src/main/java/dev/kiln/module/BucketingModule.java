package dev.kiln.module;

import dev.kiln.callback.Checkpointable;
import dev.kiln.executor.Executor;
import dev.kiln.init.Initializer;
import dev.kiln.io.DataBatch;
import dev.kiln.io.DataDesc;
import dev.kiln.metric.EvalMetric;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.NameManager;
import dev.kiln.symbol.Symbol;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * MXNet's {@code BucketingModule}: one {@link Module} per bucket key (typically a sequence
 * length), all training the same parameters. {@code symGen(key)} builds the bucket's symbol
 * (called inside a fresh {@link NameManager} scope, so automatic names restart from 0 for every
 * bucket). {@link #bind} binds the default bucket; {@link #forward} switches to the batch's
 * {@link DataBatch#bucketKey()}, binding a new bucket's module with the default bucket's module
 * as shared module: parameters, their gradients and aux states are the same arrays, the
 * optimizer and its state are borrowed, non-parameter inputs are views of the default bucket's
 * input buffers, and the executors' intermediates live in the default executors' memory pool, so
 * memory does not grow with the number of buckets when the default bucket is the largest.
 *
 * <pre>{@code
 * try (BucketingModule mod = BucketingModule.builder(key -> new BucketingModule.BucketSymbol(
 *         unrolled((Integer) key), List.of("data"), List.of("softmax_label")), 30).build()) {
 *     mod.fit(bucketIter, new BaseModule.FitArgs().numEpoch(5));
 * }
 * }</pre>
 *
 * <p>Ownership: the bucketing module owns every bucket's module (and through them all arrays);
 * {@link #close()} frees them. Outputs of a bucket are valid until the next forward of any bucket
 * (the buckets share memory). Thread-safety: not thread-safe; one thread at a time.
 */
public class BucketingModule extends BaseModule implements Checkpointable {
    private static final Logger LOG = LoggerFactory.getLogger(BucketingModule.class);

    /** What {@code sym_gen(key)} returns: the bucket's symbol and its data and label names. */
    public record BucketSymbol(Symbol symbol, List<String> dataNames, List<String> labelNames) {
        public BucketSymbol {
            Objects.requireNonNull(symbol, "symbol");
            dataNames = dataNames == null ? List.of() : List.copyOf(dataNames);
            labelNames = labelNames == null ? List.of() : List.copyOf(labelNames);
        }
    }

    /** MXNet's {@code sym_gen}. */
    @FunctionalInterface
    public interface SymGen {
        BucketSymbol generate(Object bucketKey);
    }

    /** Builder with MXNet's constructor arguments. */
    public static final class Builder {
        private final SymGen symGen;
        private final Object defaultBucketKey;
        private List<Context> contexts = List.of(Context.cpu());
        private List<Double> workLoadList;
        private List<String> fixedParamNames = List.of();
        private List<String> stateNames = List.of();
        private Logger logger;
        private Executor.Options options;

        private Builder(SymGen symGen, Object defaultBucketKey) {
            this.symGen = Objects.requireNonNull(symGen, "sym_gen");
            this.defaultBucketKey = defaultBucketKey;
        }

        public Builder context(Context... v) { contexts = List.of(v); return this; }
        public Builder context(List<Context> v) { contexts = List.copyOf(v); return this; }
        public Builder workLoadList(List<Double> v) { workLoadList = v == null ? null : List.copyOf(v); return this; }
        public Builder fixedParamNames(String... v) { fixedParamNames = List.of(v); return this; }
        public Builder fixedParamNames(List<String> v) { fixedParamNames = v == null ? List.of() : List.copyOf(v); return this; }
        public Builder stateNames(String... v) { stateNames = List.of(v); return this; }
        public Builder stateNames(List<String> v) { stateNames = v == null ? List.of() : List.copyOf(v); return this; }
        public Builder logger(Logger v) { logger = v; return this; }
        /** Executor options (planner switches, Dropout seed) for every bucket. */
        public Builder executorOptions(Executor.Options v) { options = v; return this; }

        public BucketingModule build() {
            return new BucketingModule(this);
        }
    }

    /**
     * A builder.
     *
     * @param symGen           builds a bucket's symbol and input names
     * @param defaultBucketKey the default bucket (should be the largest); must not be null
     */
    public static Builder builder(SymGen symGen, Object defaultBucketKey) {
        return new Builder(symGen, defaultBucketKey);
    }

    private final SymGen symGen;
    private final Object defaultBucketKey;
    private final List<Context> contexts;
    private final List<Double> workLoadList;
    private final List<String> fixedParamNames;
    private final List<String> stateNames;
    private final Executor.Options execOptions;

    private final Map<Object, Module> buckets = new LinkedHashMap<>();
    /** Symbols loaded from a checkpoint, used instead of symGen for those keys. */
    private final Map<Object, Symbol> loadedSymbols = new LinkedHashMap<>();
    private Module currModule;
    private Object currBucketKey;
    private boolean paramsDirty;
    private Monitor monitor;
    private Object gradReq = "write";
    /** Parameters loaded by {@link #load} and set at bind (owned until then). */
    private Checkpoints.Checkpoint preloaded;

    private BucketingModule(Builder b) {
        if (b.defaultBucketKey == null) {
            throw new IllegalArgumentException("default_bucket_key must not be None");
        }
        if (b.contexts.isEmpty()) {
            throw new IllegalArgumentException("at least one context is needed");
        }
        this.logger = b.logger != null ? b.logger : LOG;
        this.symGen = b.symGen;
        this.defaultBucketKey = b.defaultBucketKey;
        this.contexts = b.contexts;
        this.workLoadList = b.workLoadList;
        this.fixedParamNames = b.fixedParamNames;
        this.stateNames = b.stateNames;
        this.execOptions = b.options;
        // MXNet checks the input names of the default bucket's symbol in the constructor
        BucketSymbol s = callSymGen(defaultBucketKey);
        newModule(s).close();
    }

    /** {@code sym_gen(key)} inside a fresh name scope (MXNet's {@code _call_sym_gen}). */
    private BucketSymbol callSymGen(Object key) {
        BucketSymbol s;
        try (NameManager scope = NameManager.scope()) {
            s = symGen.generate(key);
        }
        if (s == null) {
            throw new IllegalStateException("sym_gen returned null for bucket key " + key);
        }
        Symbol loaded = loadedSymbols.get(key);
        return loaded == null ? s : new BucketSymbol(loaded, s.dataNames(), s.labelNames());
    }

    private Module newModule(BucketSymbol s) {
        return Module.builder(s.symbol()).dataNames(s.dataNames()).labelNames(s.labelNames()).context(contexts)
                .workLoadList(workLoadList).fixedParamNames(fixedParamNames).stateNames(stateNames).logger(logger)
                .executorOptions(execOptions).build();
    }

    // ---- properties ----------------------------------------------------------------------------

    /** The default bucket key. */
    public Object defaultBucketKey() {
        return defaultBucketKey;
    }

    /** The current bucket key (null before bind). */
    public Object currentBucketKey() {
        return currBucketKey;
    }

    /** The current bucket's module (null before bind); owned by this module. */
    public Module currentModule() {
        return currModule;
    }

    /** The bucket keys with a module, in creation order (default first). */
    public List<Object> bucketKeys() {
        return List.copyOf(buckets.keySet());
    }

    /** The module of a bucket, or null; owned by this module. */
    public Module bucketModule(Object key) {
        return buckets.get(key);
    }

    @Override
    public List<String> dataNames() {
        return binded ? currModule.dataNames() : callSymGen(defaultBucketKey).dataNames();
    }

    @Override
    public List<String> outputNames() {
        return binded ? currModule.outputNames() : callSymGen(defaultBucketKey).symbol().listOutputs();
    }

    @Override
    public List<DataDesc> dataShapes() {
        assertBound("data_shapes");
        return currModule.dataShapes();
    }

    @Override
    public List<DataDesc> labelShapes() {
        assertBound("label_shapes");
        return currModule.labelShapes();
    }

    @Override
    public List<Map.Entry<String, long[]>> outputShapes() {
        assertBound("output_shapes");
        return currModule.outputShapes();
    }

    @Override
    public Symbol symbol() {
        assertBound("symbol");
        return currModule.symbol();
    }

    // ---- parameters ----------------------------------------------------------------------------

    @Override
    public List<Map<String, NDArray>> getParams() {
        assertBoundAndInit("get_params");
        currModule.setParamsDirty(paramsDirty);
        List<Map<String, NDArray>> p = currModule.getParams();
        paramsDirty = false;
        return p;
    }

    @Override
    public void initParams(Initializer initializer, Map<String, NDArray> argParams, Map<String, NDArray> auxParams,
            boolean allowMissing, boolean forceInit, boolean allowExtra) {
        if (!shouldInitParams(forceInit, false)) {
            return;
        }
        currModule.initParams(initializer, argParams, auxParams, allowMissing, forceInit, allowExtra);
        paramsDirty = false;
        paramsInitialized = true;
    }

    @Override
    public void setParams(Map<String, NDArray> argParams, Map<String, NDArray> auxParams, boolean allowMissing, boolean forceInit,
            boolean allowExtra) {
        setParamsVia(argParams, auxParams, allowMissing, forceInit, allowExtra, () -> {
            currModule.setParams(argParams, auxParams, true, forceInit, allowExtra);
            paramsDirty = true;
        });
    }

    // ---- bind / buckets --------------------------------------------------------------------------

    /**
     * Binds the default bucket with {@code dataShapes}/{@code labelShapes} (which must be the
     * default bucket's). Parameters already initialized are kept across a forced re-bind.
     * {@code sharedModule} must be null.
     */
    @Override
    public void bind(List<DataDesc> dataShapes, List<DataDesc> labelShapes, boolean forTraining, boolean inputsNeedGrad,
            boolean forceRebind, BaseModule sharedModule, Object gradReq) {
        checkOpen();
        Map<String, NDArray> keepArg = null;
        Map<String, NDArray> keepAux = null;
        if (paramsInitialized && binded) {
            List<Map<String, NDArray>> p = getParams();
            keepArg = copyToCpu(p.get(0), new LinkedHashMap<>());
            keepAux = copyToCpu(p.get(1), new LinkedHashMap<>());
        }
        try {
            if (forceRebind) {
                resetBind();
            }
            if (binded) {
                logger.warn("Already bound, ignoring bind()");
                return;
            }
            if (sharedModule != null) {
                throw new IllegalArgumentException("shared_module for BucketingModule is not supported");
            }
            checkBindFlags(forTraining, inputsNeedGrad);
            this.forTraining = forTraining;
            this.inputsNeedGrad = inputsNeedGrad;
            this.gradReq = gradReq;
            Module module = buckets.get(defaultBucketKey);
            if (module == null) {
                module = newModule(callSymGen(defaultBucketKey));
                buckets.put(defaultBucketKey, module);
            }
            module.bind(dataShapes, labelShapes, forTraining, inputsNeedGrad, false, null, gradReq);
            makeCurrent(defaultBucketKey, module);
            binded = true;
            if (monitor != null) {
                module.installMonitor(monitor);
            }
            if (keepArg != null) {
                setParams(keepArg, keepAux, false, true, false);
            } else if (preloaded != null) {
                try (Checkpoints.Checkpoint ck = preloaded) {
                    preloaded = null;
                    paramsInitialized = false;
                    initParams(null, ck.argParams(), ck.auxParams(), false, true, false);
                }
            }
        } finally {
            if (keepArg != null) {
                keepArg.values().forEach(NDArray::close);
                keepAux.values().forEach(NDArray::close);
            }
        }
    }

    /** Puts a detached CPU copy of every array of {@code src} (may be null) into {@code dst}, which the caller closes; returns dst. */
    private static Map<String, NDArray> copyToCpu(Map<String, NDArray> src, Map<String, NDArray> dst) {
        if (src != null) {
            src.forEach((k, v) -> dst.put(k, v.copyTo(Context.cpu()).detach()));
        }
        return dst;
    }

    private void resetBind() {
        binded = false;
        optimizerInitialized = false;
        closeBuckets();
        currBucketKey = null;
    }

    /** Closes every bucket's module, last created first: buckets borrow the default bucket's arrays and optimizer. */
    private void closeBuckets() {
        List<Module> l = new ArrayList<>(buckets.values());
        for (int i = l.size() - 1; i >= 0; i--) {
            l.get(i).close();
        }
        buckets.clear();
        currModule = null;
    }

    private void makeCurrent(Object bucketKey, Module module) {
        currModule = module;
        currBucketKey = bucketKey;
        symbol = module.symbol();
    }

    /**
     * Makes {@code bucketKey} the current bucket, creating and binding its module (shared with the
     * default bucket's module) the first time. Requires bind and initialized parameters for a new
     * bucket (its parameters are the default bucket's).
     */
    public void switchBucket(Object bucketKey, List<DataDesc> dataShapes, List<DataDesc> labelShapes) {
        assertBound("switch_bucket");
        Objects.requireNonNull(bucketKey, "bucket key");
        Module module = buckets.get(bucketKey);
        if (module == null || !module.isBinded()) {
            if (module == null) {
                module = newModule(callSymGen(bucketKey));
            }
            try {
                module.bind(dataShapes, labelShapes, currModule.isForTraining(), currModule.inputsNeedGrad(), false,
                        buckets.get(defaultBucketKey), gradReq);
            } catch (RuntimeException e) {
                if (!buckets.containsKey(bucketKey)) {
                    module.close();
                }
                throw e;
            }
            if (monitor != null) {
                module.installMonitor(monitor);
            }
            buckets.put(bucketKey, module);
        }
        makeCurrent(bucketKey, module);
    }

    /** Input descriptions of a batch: its provideData, or built from its arrays with the bucket's names. */
    private static List<DataDesc> descs(List<DataDesc> provided, List<NDArray> arrays, List<String> names) {
        if (provided != null && !provided.isEmpty()) {
            return provided;
        }
        if (arrays == null || arrays.isEmpty()) {
            return null;
        }
        List<DataDesc> l = new ArrayList<>();
        for (int i = 0; i < arrays.size() && i < names.size(); i++) {
            l.add(new DataDesc(names.get(i), arrays.get(i).shape().dims()));
        }
        return l;
    }

    private void switchFor(DataBatch batch) {
        Object key = batch.bucketKey() == null ? defaultBucketKey : batch.bucketKey();
        Module m = buckets.get(key);
        List<String> dn;
        List<String> ln;
        if (m != null) {
            dn = m.dataNames();
            ln = m.labelNames();
        } else if (batch.provideData() != null && !batch.provideData().isEmpty()) {
            dn = List.of();
            ln = List.of();
        } else {
            BucketSymbol s = callSymGen(key);
            dn = s.dataNames();
            ln = s.labelNames();
        }
        switchBucket(key, descs(batch.provideData(), batch.data(), dn), descs(batch.provideLabel(), batch.label(), ln));
    }

    // ---- optimizer -----------------------------------------------------------------------------

    @Override
    protected dev.kiln.kvstore.KVStore distributedKVStore() {
        return currModule == null ? null : currModule.distributedKVStore();
    }

    @Override
    public void initOptimizer(Object kvstore, Object optimizer, Map<String, ?> optimizerParams, boolean forceInit) {
        if (!shouldInitOptimizer(forceInit, "optimizer already initialized, ignoring.")) {
            return;
        }
        currModule.initOptimizer(kvstore, optimizer, optimizerParams, forceInit);
        for (Module m : buckets.values()) {
            if (m != currModule && m.isBinded()) {
                m.borrowOptimizer(currModule);
            }
        }
        optimizerInitialized = true;
    }

    // ---- computation ---------------------------------------------------------------------------

    /** MXNet: switches to the batch's bucket, prepares it and switches back to the current bucket. */
    @Override
    public void prepare(DataBatch batch) {
        assertBoundAndInit("prepare");
        Object original = currBucketKey;
        switchFor(batch);
        currModule.prepare(batch);
        makeCurrent(original, buckets.get(original));
    }

    /** Switches to the batch's bucket ({@link DataBatch#bucketKey()}; null means the default one) and runs forward. */
    @Override
    public void forward(DataBatch batch, Boolean isTrain) {
        assertBoundAndInit("forward");
        switchFor(batch);
        currModule.forward(batch, isTrain);
    }

    @Override
    public void forwardBackward(DataBatch batch) {
        assertBoundAndInit("forward_backward");
        switchFor(batch);
        currModule.forwardBackward(batch);
    }

    @Override
    public void backward(List<NDArray> outGrads) {
        assertBoundAndInit("backward");
        currModule.backward(outGrads);
    }

    @Override
    public void update() {
        assertBoundAndInit("update");
        assertOptimizerInitialized("update");
        paramsDirty = true;
        currModule.update();
    }

    @Override
    public List<NDArray> getOutputs() {
        assertBoundAndInit("get_outputs");
        return currModule.getOutputs();
    }

    @Override
    public List<List<NDArray>> getOutputsPerDevice() {
        assertBoundAndInit("get_outputs");
        return currModule.getOutputsPerDevice();
    }

    @Override
    public List<NDArray> getInputGrads() {
        assertInputsNeedGrad("get_input_grads");
        return currModule.getInputGrads();
    }

    @Override
    public void updateMetric(EvalMetric metric, List<NDArray> labels, boolean preSliced) {
        assertBoundAndInit("update_metric");
        currModule.updateMetric(metric, labels, preSliced);
    }

    /** The current bucket's states (see {@link Module#getStates()}). */
    public List<List<NDArray>> getStates() {
        assertBoundAndInit("get_states");
        return currModule.getStates();
    }

    /** Sets the current bucket's states (see {@link Module#setStates}). */
    public void setStates(List<List<NDArray>> states, Double value) {
        assertBoundAndInit("set_states");
        currModule.setStates(states, value);
    }

    @Override
    public void installMonitor(Monitor mon) {
        assertBound("install_monitor");
        monitor = mon;
        for (Module m : buckets.values()) {
            if (m.isBinded()) {
                m.installMonitor(mon);
            }
        }
    }

    // ---- checkpoints ---------------------------------------------------------------------------

    /**
     * MXNet 1.9's {@code save_checkpoint}: the current parameters to {@code <prefix>-%04d.params},
     * for every bucket key {@code <prefix>-<key>-symbol.json}, and the keys as one int32 array (an
     * unnamed list) in {@code <prefix>.buckets}; with {@code saveOptimizerStates} also
     * {@code <prefix>-%04d.states}. Keys must be integers (as MXNet's load requires).
     */
    @Override
    public void saveCheckpoint(String prefix, int epoch, boolean saveOptimizerStates) throws IOException {
        assertBoundAndInit("save_checkpoint");
        float[] keys = new float[buckets.size()];
        int i = 0;
        for (Object k : buckets.keySet()) {
            if (!(k instanceof Integer n)) {
                throw new IllegalArgumentException("save_checkpoint: bucket keys must be integers, got " + k + " ("
                        + k.getClass().getSimpleName() + ")");
            }
            keys[i++] = n;
        }
        List<Map<String, NDArray>> p = getParams();
        Checkpoints.save(prefix, epoch, null, p.get(0), p.get(1));
        for (Map.Entry<Object, Module> e : buckets.entrySet()) {
            e.getValue().symbol().save(Path.of(prefix + "-" + e.getKey() + "-symbol.json"));
        }
        try (NDArray f = NDArray.create(keys, keys.length).detach(); NDArray k = f.asType(DType.INT32).detach()) {
            NDArray.save(Path.of(prefix + ".buckets"), List.of(k));
        }
        if (saveOptimizerStates) {
            currModule.saveCheckpointStates(prefix, epoch);
        }
    }

    /**
     * MXNet's {@code BucketingModule.load}: reads {@code <prefix>.buckets}, each bucket's
     * {@code <prefix>-<key>-symbol.json} (used instead of {@code symGen}'s symbol for that key;
     * {@code symGen} still gives the input names) and {@code <prefix>-%04d.params}; the parameters
     * count as initialized and are set at bind.
     *
     * @param configure optional builder settings (contexts, fixed/state names, ...)
     */
    public static BucketingModule load(String prefix, int epoch, SymGen symGen, Object defaultBucketKey,
            java.util.function.Consumer<Builder> configure) throws IOException {
        Builder b = configuredBuilder(symGen, defaultBucketKey, configure);
        Map<String, NDArray> keyFile = NDArray.load(Path.of(prefix + ".buckets"));
        List<Integer> keys = new ArrayList<>();
        try {
            if (keyFile.size() != 1) {
                throw new IllegalArgumentException(prefix + ".buckets must hold one array of bucket keys, found " + keyFile.size());
            }
            NDArray k = keyFile.values().iterator().next();
            try (NDArray f = k.asType(DType.FLOAT32).detach()) {
                for (float v : f.toFloatArray()) {
                    keys.add((int) v);
                }
            }
        } finally {
            keyFile.values().forEach(NDArray::close);
        }
        Map<Object, Symbol> syms = new LinkedHashMap<>();
        for (Integer k : keys) {
            syms.put(k, Symbol.load(Path.of(prefix + "-" + k + "-symbol.json")));
        }
        BucketingModule m = b.build();
        m.loadedSymbols.putAll(syms);
        try {
            m.preloaded = Checkpoints.loadParams(prefix, epoch);
        } catch (IOException | RuntimeException e) {
            m.close();
            throw e;
        }
        m.paramsInitialized = true;
        return m;
    }

    private static Builder configuredBuilder(SymGen symGen, Object defaultBucketKey, java.util.function.Consumer<Builder> configure) {
        Builder b = builder(symGen, defaultBucketKey);
        if (configure != null) {
            configure.accept(b);
        }
        return b;
    }

    /**
     * MXNet's {@code BucketingModule.load_dict}: a module whose buckets use the given symbols
     * (keys absent from {@code symDict} use {@code symGen}) and whose parameters count as
     * initialized and are set at bind. The arrays are copied (the caller keeps ownership of its
     * maps).
     */
    public static BucketingModule loadDict(Map<Object, Symbol> symDict, SymGen symGen, Object defaultBucketKey,
            Map<String, NDArray> argParams, Map<String, NDArray> auxParams, java.util.function.Consumer<Builder> configure) {
        Builder b = configuredBuilder(symGen, defaultBucketKey, configure);
        BucketingModule m = b.build();
        if (symDict != null) {
            m.loadedSymbols.putAll(symDict);
        }
        Map<String, NDArray> arg = new LinkedHashMap<>();
        Map<String, NDArray> aux = new LinkedHashMap<>();
        m.preloaded = new Checkpoints.Checkpoint(null, arg, aux);
        try {
            copyToCpu(argParams, arg);
            copyToCpu(auxParams, aux);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        m.paramsInitialized = true;
        return m;
    }

    // ---- lifecycle -----------------------------------------------------------------------------

    @Override
    public void close() {
        if (!markClosed()) {
            return;
        }
        closeBuckets();
        if (preloaded != null) {
            preloaded.close();
            preloaded = null;
        }
        binded = false;
    }

    @Override
    public String toString() {
        return "BucketingModule{default_bucket_key=" + defaultBucketKey + ", buckets=" + buckets.keySet() + ", current="
                + currBucketKey + ", binded=" + binded + ", params_initialized=" + paramsInitialized + "}";
    }
}
