package dev.kiln.module;

import dev.kiln.callback.Checkpointable;
import dev.kiln.executor.Executor;
import dev.kiln.init.InitDesc;
import dev.kiln.init.Initializer;
import dev.kiln.internal.AtomicFiles;
import dev.kiln.io.DataBatch;
import dev.kiln.io.DataDesc;
import dev.kiln.kvstore.KVStore;
import dev.kiln.metric.EvalMetric;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.Optimizers;
import dev.kiln.optimizer.Updater;
import dev.kiln.symbol.Symbol;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;

/**
 * MXNet's {@code Module}: a symbol bound to one or more devices, with parameters, an optimizer
 * and the intermediate API (bind, initParams, initOptimizer, forward, backward, update, ...) that
 * {@link BaseModule}'s fit/score/predict are written on.
 *
 * <pre>{@code
 * try (Module mod = Module.builder(net).context(Context.cpu()).build()) {
 *     mod.fit(train, new BaseModule.FitArgs().evalData(test).numEpoch(10)
 *             .optimizerParams(Map.of("learning_rate", 0.1, "momentum", 0.9)));
 * }
 * }</pre>
 *
 * <p>Several contexts slice each batch as MXNet does (round half to even, the remainder to the last
 * device) and sum the gradients through a {@link KVStore}; the optimizer runs in one place, as one
 * fused native call per step.
 *
 * <p>Ownership and thread-safety: see {@link BaseModule}. Parameter dictionaries returned by
 * {@link #getParams()} belong to the module (aliased with a shared module's when bound with one).
 */
public class Module extends BaseModule implements Checkpointable {
    private static final Logger LOG = LoggerFactory.getLogger(Module.class);
    private static final long KVSTORE_BIG_PARAM = 16L << 20;

    private final List<String> dataNames;
    private final List<String> labelNames;
    private final List<String> stateNames;
    private final List<String> fixedParamNames;
    private final List<String> paramNames;
    private final List<String> auxNames;
    private final List<String> outputNames;
    private final List<Context> contexts;
    private final List<Double> workLoadList;
    private final Executor.Options execOptions;

    private Map<String, NDArray> argParams;
    private Map<String, NDArray> auxParams;
    private boolean paramsAliased;
    private boolean paramsDirty;
    private Optimizer optimizer;
    private KVStore kvstore;
    private boolean ownsKvstore;
    private boolean updateOnKvstore;
    private Updater updater;
    private LossScaler lossScaler;
    private boolean ownsOptimizerState;
    private Path preloadOptStates;
    private Object gradReq = "write";
    /**
     * Parameter order of the optimizer's indices ({@code i*k+d}): this module's own names, or the
     * lending module's after {@link #borrowOptimizer} (bucket symbols may list the shared
     * parameters in another order, and the optimizer state is keyed by index).
     */
    private List<String> optimizerParamNames;
    private DataParallelExecutorGroup execGroup;
    private List<DataDesc> dataShapes;
    private List<DataDesc> labelShapes;
    private Monitor monitor;
    /** Keys, gradients and weights of the last update (reused while the arrays do not change). */
    private UpdateLists updateLists;

    private record UpdateLists(List<List<Object>> keys, List<List<NDArray>> grads, List<List<NDArray>> weights,
            List<String> kvKeys, List<List<NDArray>> kvGrads, List<List<NDArray>> kvWeights, List<Executor> execs) {}

    /** Builder with MXNet's constructor arguments and defaults. */
    public static final class Builder {
        private final Symbol symbol;
        private List<String> dataNames = List.of("data");
        private List<String> labelNames = List.of("softmax_label");
        private List<Context> contexts = List.of(Context.cpu());
        private List<Double> workLoadList;
        private List<String> fixedParamNames = List.of();
        private List<String> stateNames = List.of();
        private Logger logger;
        private Executor.Options options;

        private Builder(Symbol symbol) {
            this.symbol = Objects.requireNonNull(symbol, "symbol");
        }

        public Builder dataNames(String... v) { dataNames = List.of(v); return this; }
        public Builder dataNames(List<String> v) { dataNames = v == null ? List.of() : List.copyOf(v); return this; }
        public Builder labelNames(String... v) { labelNames = List.of(v); return this; }
        public Builder labelNames(List<String> v) { labelNames = v == null ? List.of() : List.copyOf(v); return this; }
        public Builder context(Context... v) { contexts = List.of(v); return this; }
        public Builder context(List<Context> v) { contexts = List.copyOf(v); return this; }
        public Builder workLoadList(List<Double> v) { workLoadList = v == null ? null : List.copyOf(v); return this; }
        public Builder fixedParamNames(String... v) { fixedParamNames = List.of(v); return this; }
        public Builder fixedParamNames(List<String> v) { fixedParamNames = v == null ? List.of() : List.copyOf(v); return this; }
        public Builder stateNames(String... v) { stateNames = List.of(v); return this; }
        public Builder stateNames(List<String> v) { stateNames = v == null ? List.of() : List.copyOf(v); return this; }
        public Builder logger(Logger v) { logger = v; return this; }
        /** Executor options (planner switches, Dropout seed) for every device. */
        public Builder executorOptions(Executor.Options v) { options = v; return this; }

        public Module build() {
            return new Module(this);
        }
    }

    /** A builder for {@code symbol} (data name "data", label name "softmax_label", cpu(0)). */
    public static Builder builder(Symbol symbol) {
        return new Builder(symbol);
    }

    /** {@code Module(symbol)} with MXNet's defaults. */
    public Module(Symbol symbol) {
        this(new Builder(symbol));
    }

    private Module(Builder b) {
        this.symbol = b.symbol;
        this.logger = b.logger != null ? b.logger : LOG;
        if (b.contexts.isEmpty()) {
            throw new IllegalArgumentException("at least one context is needed");
        }
        this.contexts = b.contexts;
        this.workLoadList = b.workLoadList == null ? java.util.Collections.nCopies(contexts.size(), 1.0) : b.workLoadList;
        if (workLoadList.size() != contexts.size()) {
            throw new IllegalArgumentException("work_load_list has " + workLoadList.size() + " entries for " + contexts.size()
                    + " contexts");
        }
        this.dataNames = b.dataNames;
        this.labelNames = b.labelNames;
        this.stateNames = b.stateNames;
        this.fixedParamNames = b.fixedParamNames;
        this.execOptions = b.options;
        checkInputNames(dataNames, "data", true);
        checkInputNames(labelNames, "label", false);
        checkInputNames(stateNames, "state", true);
        checkInputNames(fixedParamNames, "fixed_param", true);
        List<String> inputs = new ArrayList<>(dataNames);
        inputs.addAll(labelNames);
        inputs.addAll(stateNames);
        List<String> params = new ArrayList<>();
        for (String a : symbol.listArguments()) {
            if (!inputs.contains(a)) {
                params.add(a);
            }
        }
        this.paramNames = List.copyOf(params);
        this.auxNames = symbol.listAuxiliaryStates();
        this.outputNames = symbol.listOutputs();
    }

    private void checkInputNames(List<String> names, String typename, boolean raise) {
        List<String> args = symbol.listArguments();
        for (String n : names) {
            if (!args.contains(n)) {
                List<String> candidates = new ArrayList<>();
                for (String a : args) {
                    if (!a.endsWith("_weight") && !a.endsWith("_bias") && !a.endsWith("_gamma") && !a.endsWith("_beta")) {
                        candidates.add(a);
                    }
                }
                String msg = "You created Module with Module(..., " + typename + "_names=" + names + ") but input with name '" + n
                        + "' is not found in symbol.list_arguments(). Did you mean one of:\n\t" + String.join("\n\t", candidates);
                if (raise) {
                    throw new IllegalArgumentException(msg);
                }
                logger.warn(msg);
            }
        }
    }

    // ---- properties ----------------------------------------------------------------------------

    @Override
    public List<String> dataNames() {
        return dataNames;
    }

    public List<String> labelNames() {
        return labelNames;
    }

    @Override
    public List<String> outputNames() {
        return outputNames;
    }

    /** Parameter names (arguments minus data, label and state names, in list_arguments order). */
    public List<String> paramNames() {
        return paramNames;
    }

    public List<String> auxNames() {
        return auxNames;
    }

    public List<Context> contexts() {
        return contexts;
    }

    @Override
    public List<DataDesc> dataShapes() {
        assertBound("data_shapes");
        return dataShapes;
    }

    @Override
    public List<DataDesc> labelShapes() {
        assertBound("label_shapes");
        return labelShapes;
    }

    @Override
    public List<Map.Entry<String, long[]>> outputShapes() {
        assertBound("output_shapes");
        return execGroup.outputShapes();
    }

    /** The installed optimizer (null before initOptimizer). */
    public Optimizer optimizer() {
        return optimizer;
    }

    /** The KVStore in use (null when updates run locally). */
    public KVStore kvstore() {
        return kvstore;
    }

    /** Whether the optimizer runs inside the KVStore. */
    public boolean updateOnKvstore() {
        return updateOnKvstore;
    }

    /** The module's updater (null when the optimizer runs inside the KVStore). */
    public Updater updater() {
        return updater;
    }

    /**
     * Installs dynamic loss scaling (null removes it): each backward multiplies the loss
     * operators' gradients by the scaler's scale, and {@link #update()} checks the gradients,
     * skips a step that overflowed (the weights and optimizer states stay as they were) and
     * otherwise updates with {@code rescale_grad / scale}. Works with local updates and the local
     * and device KVStores; a distributed KVStore is refused (each worker would decide alone).
     *
     * @param scaler the scaler (kept, not copied), or null
     * @throws UnsupportedOperationException with a distributed KVStore
     */
    public void setLossScaler(LossScaler scaler) {
        if (scaler != null) {
            refuseDistributedScaling();
        }
        this.lossScaler = scaler;
        if (execGroup != null) {
            setExecutorLossScale(scaler == null ? 1 : scaler.lossScale());
        }
    }

    /** The installed loss scaler, or null. */
    public LossScaler lossScaler() {
        return lossScaler;
    }

    private void refuseDistributedScaling() {
        if (kvstore != null && kvstore.isDistributed()) {
            throw new UnsupportedOperationException("loss scaling with the distributed KVStore " + kvstore.type()
                    + " is not supported: each worker would skip steps on its own gradients");
        }
    }

    /** Before a backward: the executors use the scaler's current scale. */
    private void applyLossScale() {
        if (lossScaler != null) {
            setExecutorLossScale(lossScaler.lossScale());
        }
    }

    /** Every executor of the group (a reshape may have made new ones) gets {@code scale}. */
    private void setExecutorLossScale(double scale) {
        for (dev.kiln.executor.Executor ex : execGroup.executors()) {
            if (ex.lossScale() != scale) {
                ex.setLossScale(scale);
            }
        }
    }

    /** The executor group (advanced use and tests). */
    public DataParallelExecutorGroup execGroup() {
        assertBound("exec_group");
        return execGroup;
    }

    // ---- bind ----------------------------------------------------------------------------------

    /** Binds with plain name/shape pairs (float32, layout NCHW). */
    public void bind(Map<String, long[]> dataShapes, Map<String, long[]> labelShapes, boolean forTraining) {
        bind(toDescs(dataShapes), labelShapes == null ? null : toDescs(labelShapes), forTraining, false, false, null, "write");
    }

    private static List<DataDesc> toDescs(Map<String, long[]> m) {
        List<DataDesc> l = new ArrayList<>();
        m.forEach((k, v) -> l.add(new DataDesc(k, v)));
        return l;
    }

    @Override
    public void bind(List<DataDesc> dataShapes, List<DataDesc> labelShapes, boolean forTraining, boolean inputsNeedGrad,
            boolean forceRebind, BaseModule sharedModule, Object gradReq) {
        checkOpen();
        if (forceRebind) {
            resetBind();
        }
        if (binded) {
            logger.warn("Already bound, ignoring bind()");
            return;
        }
        checkBindFlags(forTraining, inputsNeedGrad);
        if (dataShapes == null) {
            throw new IllegalArgumentException("data_shapes is required");
        }
        List<DataDesc> data = parseDescs(dataShapes, dataNames, "data", true);
        List<DataDesc> label = labelShapes == null || labelShapes.isEmpty() ? null : parseDescs(labelShapes, labelNames, "label", false);
        Module shared = null;
        if (sharedModule != null) {
            if (!(sharedModule instanceof Module m) || !m.binded || !m.paramsInitialized) {
                throw new IllegalArgumentException("shared_module must be a bound Module with initialized parameters");
            }
            if (m.execGroup.executors().size() < contexts.size()) {
                throw new IllegalArgumentException("shared_module has fewer executors than this module's contexts");
            }
            shared = m;
        }
        DataParallelExecutorGroup group = new DataParallelExecutorGroup(symbol, contexts, workLoadList, data, label, paramNames,
                forTraining, inputsNeedGrad, shared == null ? null : shared.execGroup, fixedParamNames, gradReq, stateNames,
                execOptions);
        this.execGroup = group;
        this.forTraining = forTraining;
        this.inputsNeedGrad = inputsNeedGrad;
        this.gradReq = gradReq;
        this.dataShapes = data;
        this.labelShapes = label;
        this.updateLists = null;
        if (shared != null) {
            closeParams();
            paramsInitialized = true;
            argParams = shared.argParams;
            auxParams = shared.auxParams;
            paramsAliased = true;
        } else if (paramsInitialized) {
            group.setParams(argParams, auxParams, false);
        } else {
            closeParams();
            argParams = new LinkedHashMap<>();
            auxParams = new LinkedHashMap<>();
            Executor ex = group.bindExecutors().get(0);
            for (String n : paramNames) {
                NDArray a = ex.argDict().get(n);
                argParams.put(n, NDArray.zeros(a.shape(), a.dtype(), Context.cpu()).setName(n).detach());
            }
            for (String n : auxNames) {
                NDArray a = ex.auxDict().get(n);
                auxParams.put(n, NDArray.zeros(a.shape(), a.dtype(), Context.cpu()).setName(n).detach());
            }
        }
        if (shared != null && shared.optimizerInitialized) {
            borrowOptimizer(shared);
        }
        if (monitor != null) {
            group.executors().forEach(monitor::install);
        }
        binded = true;
    }

    private List<DataDesc> parseDescs(List<DataDesc> descs, List<String> names, String what, boolean raise) {
        List<String> given = new ArrayList<>();
        descs.forEach(d -> given.add(d.name()));
        if (!new TreeSet<>(given).equals(new TreeSet<>(names)) || given.size() != names.size()) {
            String msg = (what.equals("data") ? "Data" : "Label") + " provided by " + what + "_shapes don't match names specified by "
                    + what + "_names (" + given + " vs. " + names + ")";
            if (raise) {
                throw new IllegalArgumentException(msg);
            }
            logger.warn(msg);
        }
        return List.copyOf(descs);
    }

    private void resetBind() {
        binded = false;
        if (execGroup != null) {
            execGroup.close();
        }
        execGroup = null;
        dataShapes = null;
        labelShapes = null;
        updateLists = null;
    }

    /** Re-binds the executors for new input shapes (parameters and memory of the bind are reused). */
    public void reshape(List<DataDesc> dataShapes, List<DataDesc> labelShapes) {
        assertBound("reshape");
        List<DataDesc> data = parseDescs(dataShapes, dataNames, "data", true);
        List<DataDesc> label = labelShapes == null || labelShapes.isEmpty() ? null : parseDescs(labelShapes, labelNames, "label", false);
        execGroup.reshape(data, label);
        this.dataShapes = data;
        this.labelShapes = label;
        this.updateLists = null;
        if (monitor != null) {
            execGroup.executors().forEach(monitor::install);
        }
    }

    // ---- parameters ----------------------------------------------------------------------------

    @Override
    public void initParams(Initializer initializer, Map<String, NDArray> argParams, Map<String, NDArray> auxParams,
            boolean allowMissing, boolean forceInit, boolean allowExtra) {
        if (!shouldInitParams(forceInit, true)) {
            return;
        }
        Map<String, Map<String, String>> attrs = symbol.attrDict();
        for (String name : new TreeSet<>(this.argParams.keySet())) {
            initOne(name, this.argParams.get(name), argParams, initializer, allowMissing, attrs);
        }
        for (String name : new TreeSet<>(this.auxParams.keySet())) {
            initOne(name, this.auxParams.get(name), auxParams, initializer, allowMissing, attrs);
        }
        paramsInitialized = true;
        paramsDirty = false;
        execGroup.setParams(this.argParams, this.auxParams, allowExtra);
    }

    private static void initOne(String name, NDArray arr, Map<String, NDArray> cache, Initializer initializer, boolean allowMissing,
            Map<String, Map<String, String>> attrs) {
        InitDesc desc = new InitDesc(name, attrs.get(name), initializer);
        if (cache != null) {
            NDArray v = cache.get(name);
            if (v != null) {
                if (v != arr) {
                    if (!v.shape().equals(arr.shape())) {
                        throw new IllegalArgumentException("parameter '" + name + "' has shape " + v.shape() + " but the module expects "
                                + arr.shape());
                    }
                    v.copyTo(arr);
                }
                return;
            }
            if (!allowMissing) {
                throw new IllegalStateException(name + " is not presented");
            }
            if (initializer != null) {
                initializer.init(desc, arr);
            }
            return;
        }
        if (initializer == null) {
            throw new IllegalArgumentException("no initializer and no value for parameter '" + name + "'");
        }
        initializer.init(desc, arr);
    }

    @Override
    public void setParams(Map<String, NDArray> argParams, Map<String, NDArray> auxParams, boolean allowMissing, boolean forceInit,
            boolean allowExtra) {
        setParamsVia(argParams, auxParams, allowMissing, forceInit, allowExtra, () -> {
            execGroup.setParams(argParams, auxParams, allowExtra);
            paramsDirty = true;
        });
    }

    @Override
    public List<Map<String, NDArray>> getParams() {
        assertBoundAndInit("get_params");
        if (paramsDirty) {
            syncParamsFromDevices();
        }
        return List.of(argParams, auxParams);
    }

    /** Marks the CPU parameter copies stale (BucketingModule: another bucket updated the shared arrays). */
    void setParamsDirty(boolean dirty) {
        paramsDirty = paramsDirty || dirty;
    }

    private void syncParamsFromDevices() {
        execGroup.getParams(argParams, auxParams);
        paramsDirty = false;
    }

    // ---- optimizer -----------------------------------------------------------------------------

    @Override
    public void initOptimizer(Object kvstore, Object optimizer, Map<String, ?> optimizerParams, boolean forceInit) {
        if (!shouldInitOptimizer(forceInit, "optimizer already initialized, ignoring...")) {
            return;
        }
        if (paramsDirty) {
            syncParamsFromDevices();
        }
        releaseOptimizer();
        int k = contexts.size();
        createKvstore(kvstore, k);
        int batchSize = execGroup.batchSize();
        // MXNet: 1/(batch x workers) for the synchronous distributed stores (one process with the combined batch)
        double rescale = 1.0 / batchSize / (this.kvstore != null && this.kvstore.isDistributed() ? this.kvstore.numWorkers() : 1);
        Map<Object, String> idx2name = new LinkedHashMap<>();
        if (updateOnKvstore) {
            for (int i = 0; i < paramNames.size(); i++) {
                idx2name.put(i, paramNames.get(i));
            }
        } else {
            for (int i = 0; i < paramNames.size(); i++) {
                for (int d = 0; d < k; d++) {
                    idx2name.put(i * k + d, paramNames.get(i));
                }
            }
        }
        Optimizer opt;
        if (optimizer instanceof String name) {
            Map<String, Object> params = new LinkedHashMap<>();
            if (optimizerParams != null) {
                params.putAll(optimizerParams);
            }
            params.putIfAbsent("rescale_grad", rescale);
            params.put("sym", symbol);
            params.put("param_idx2name", idx2name);
            opt = Optimizers.create(name, params);
        } else if (optimizer instanceof Optimizer o) {
            opt = o;
            if (Math.abs(o.rescaleGrad() - rescale) > 1e-12 * Math.max(1, rescale)) {
                logger.warn(String.format(Locale.ROOT, "Optimizer created manually outside Module but rescale_grad is not normalized to "
                        + "1.0/batch_size/num_workers (%s vs. %s). Is this intended?", o.rescaleGrad(), rescale));
            }
            if (o.idx2name().isEmpty()) {
                o.setIdx2Name(idx2name, false);
            }
        } else {
            throw new IllegalArgumentException("optimizer must be a name or an Optimizer, got " + optimizer);
        }
        this.optimizer = opt;
        this.updater = null;
        if (this.kvstore != null) {
            List<String> keys = new ArrayList<>();
            List<NDArray> values = new ArrayList<>();
            for (String n : paramNames) {
                keys.add(n);
                values.add(argParams.get(n));
            }
            if (updateOnKvstore) {
                this.kvstore.setOptimizer(opt);
            }
            this.kvstore.init(keys, values);
            // a distributed store always hands rank 0's initial weights to every worker (MXNet 1.9 did
            // not without update_on_kvstore, and the replicas then started apart)
            if (updateOnKvstore || this.kvstore.isDistributed()) {
                this.kvstore.pull(keys, execGroup.paramArrays());
                paramsDirty = true;
            }
        }
        if (!updateOnKvstore) {
            updater = new Updater(opt);
        }
        ownsOptimizerState = true;
        optimizerInitialized = true;
        optimizerParamNames = paramNames;
        updateLists = null;
        if (preloadOptStates != null) {
            Path p = preloadOptStates;
            preloadOptStates = null;
            try {
                loadOptimizerStates(p);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException("cannot load optimizer states " + p, e);
            }
        }
    }

    private void createKvstore(Object kv, int k) {
        String env = System.getenv("MXNET_UPDATE_ON_KVSTORE");
        boolean onKv = env == null || !env.equals("0");
        kvstore = null;
        ownsKvstore = false;
        if (kv instanceof KVStore store) {
            kvstore = store;
        } else if (kv instanceof String s) {
            if (k == 1 && !s.contains("dist")) {
                kvstore = null;
            } else {
                kvstore = KVStore.create(s);
                ownsKvstore = true;
                if (s.equals("local")) {
                    long max = 0;
                    for (NDArray a : argParams.values()) {
                        max = Math.max(max, a.size());
                    }
                    if (max > KVSTORE_BIG_PARAM) {
                        onKv = false;
                    }
                }
            }
        } else if (kv != null) {
            throw new IllegalArgumentException("kvstore must be a name, a KVStore or null, got " + kv);
        }
        updateOnKvstore = kvstore != null && onKv;
    }

    @Override
    protected KVStore distributedKVStore() {
        return kvstore != null && kvstore.isDistributed() ? kvstore : null;
    }

    /** Shares {@code shared}'s optimizer, kvstore and updater (bucketing). */
    public void borrowOptimizer(Module shared) {
        if (!shared.optimizerInitialized) {
            throw new IllegalStateException("the shared module has no optimizer");
        }
        releaseOptimizer();
        optimizer = shared.optimizer;
        kvstore = shared.kvstore;
        updateOnKvstore = shared.updateOnKvstore;
        updater = shared.updater;
        optimizerParamNames = shared.optimizerParamNames;
        for (String n : paramNames) {
            if (!optimizerParamNames.contains(n)) {
                throw new IllegalArgumentException("borrow_optimizer: parameter '" + n + "' is not a parameter of the module that "
                        + "owns the optimizer (" + optimizerParamNames + ")");
            }
        }
        ownsKvstore = false;
        ownsOptimizerState = false;
        optimizerInitialized = true;
        updateLists = null;
    }

    private void releaseOptimizer() {
        if (ownsOptimizerState && updater != null) {
            updater.close();
        }
        if (ownsKvstore && kvstore != null) {
            kvstore.close();
        }
        updater = null;
        kvstore = null;
        ownsKvstore = false;
        ownsOptimizerState = false;
        optimizerInitialized = false;
    }

    // ---- forward / backward / update -------------------------------------------------------------

    @Override
    public void forward(DataBatch batch, Boolean isTrain) {
        assertBoundAndInit("forward");
        reshapeFor(batch);
        execGroup.forward(batch, isTrain == null ? forTraining : isTrain);
    }

    /** Forward (training) and backward in one native call per device, when the graph ends in losses. */
    @Override
    public void forwardBackward(DataBatch batch) {
        assertBoundAndInit("forward_backward");
        if (!forTraining) {
            throw new IllegalStateException("re-bind with for_training=True to run backward");
        }
        reshapeFor(batch);
        applyLossScale();
        execGroup.forwardBackward(batch);
    }

    /** Reshapes the executors when the batch's data shapes differ from the bound ones (MXNet's forward). */
    private void reshapeFor(DataBatch batch) {
        List<NDArray> data = batch.data();
        boolean same = data.size() == dataShapes.size();
        for (int i = 0; same && i < data.size(); i++) {
            same = Arrays.equals(data.get(i).shape().dims(), dataShapes.get(i).shape());
        }
        if (same) {
            return;
        }
        List<DataDesc> newData;
        if (batch.provideData() != null && !batch.provideData().isEmpty()) {
            newData = batch.provideData();
        } else {
            newData = new ArrayList<>();
            for (int i = 0; i < dataShapes.size(); i++) {
                DataDesc d = dataShapes.get(i);
                newData.add(new DataDesc(d.name(), data.get(i).shape().dims(), d.dtype(), d.layout()));
            }
        }
        List<DataDesc> newLabel = null;
        if (batch.provideLabel() != null && !batch.provideLabel().isEmpty()) {
            newLabel = batch.provideLabel();
        } else if (!batch.label().isEmpty() && labelShapes != null) {
            newLabel = new ArrayList<>();
            for (int i = 0; i < labelShapes.size() && i < batch.label().size(); i++) {
                DataDesc d = labelShapes.get(i);
                newLabel.add(new DataDesc(d.name(), batch.label().get(i).shape().dims(), d.dtype(), d.layout()));
            }
        }
        reshape(newData, newLabel);
    }

    @Override
    public void backward(List<NDArray> outGrads) {
        assertBoundAndInit("backward");
        applyLossScale();
        execGroup.backward(outGrads);
    }

    @Override
    public void update() {
        assertBoundAndInit("update");
        assertOptimizerInitialized("update");
        if (lossScaler == null) {
            applyUpdate(false);
            return;
        }
        refuseDistributedScaling();
        double used = lossScaler.lossScale();
        List<NDArray> grads = new ArrayList<>();
        execGroup.paramGrads().forEach(grads::addAll);
        // Several devices' gradients are summed before the update, and a 16-bit sum of finite
        // gradients can overflow: check the sums (MXNet's Trainer checks after its allreduce).
        // Where the kvstore sums and updates in one push, check that each 16-bit gradient times
        // the device count is finite instead, which no sum of them can then exceed.
        // The devices' own gradients are checked first in any case: a store that compresses
        // gradients would turn an Inf into a finite code (and keep it in its residual).
        boolean summed = kvstore != null && contexts.size() > 1;
        if (summed && !updateOnKvstore && LossScaler.allFinite(grads)) {
            sumGradients();
        }
        boolean overflow;
        if (summed && updateOnKvstore) {
            try (NDScope scope = NDScope.open()) {
                List<NDArray> bounded = new ArrayList<>();
                for (NDArray g : grads) {
                    if (g != null) {  // fixed parameters have no gradient
                        bounded.add(g.dtype().isLowPrecision() ? g.mul(contexts.size()) : g);
                    }
                }
                overflow = lossScaler.checkOverflow(bounded);
            }
        } else {
            overflow = lossScaler.checkOverflow(grads);  // the sums, or the devices' gradients when they overflowed
        }
        if (overflow) {
            LOG.info("loss scaling: gradients overflowed at scale {}, step skipped; next scale {}", used, lossScaler.lossScale());
            return;
        }
        double rescale = optimizer.rescaleGrad();
        optimizer.setRescaleGrad(rescale / used);
        try {
            applyUpdate(summed && !updateOnKvstore);
        } finally {
            optimizer.setRescaleGrad(rescale);
        }
    }

    /** Optimizer off the kvstore: every device's gradients become their sum over the devices (push, then pull into them). */
    private void sumGradients() {
        UpdateLists u = updateLists();
        kvstore.push(u.kvKeys, u.kvGrads);
        kvstore.pull(u.kvKeys, u.kvGrads);
    }

    /**
     * The optimizer step: on the kvstore (push gradients, pull weights), or on each device with its
     * gradients summed over the devices first (by the kvstore, unless {@code gradientsSummed}).
     */
    private void applyUpdate(boolean gradientsSummed) {
        paramsDirty = true;
        UpdateLists u = updateLists();
        if (updateOnKvstore) {
            kvstore.push(u.kvKeys, u.kvGrads);
            kvstore.pull(u.kvKeys, u.kvWeights);
            return;
        }
        if (kvstore != null && !gradientsSummed) {
            sumGradients();
        }
        for (int d = 0; d < u.keys.size(); d++) {
            if (!u.keys.get(d).isEmpty()) {
                updater.update(u.keys.get(d), u.grads.get(d), u.weights.get(d));
            }
        }
    }

    private UpdateLists updateLists() {
        List<Executor> execs = execGroup.executors();
        if (updateLists != null && updateLists.execs.equals(execs)) {
            return updateLists;
        }
        int k = contexts.size();
        List<List<NDArray>> grads = execGroup.paramGrads();
        List<List<NDArray>> weights = execGroup.paramArrays();
        List<List<Object>> keys = new ArrayList<>();
        List<List<NDArray>> g = new ArrayList<>();
        List<List<NDArray>> w = new ArrayList<>();
        for (int d = 0; d < k; d++) {
            keys.add(new ArrayList<>());
            g.add(new ArrayList<>());
            w.add(new ArrayList<>());
        }
        List<String> kvKeys = new ArrayList<>();
        List<List<NDArray>> kvGrads = new ArrayList<>();
        List<List<NDArray>> kvWeights = new ArrayList<>();
        for (int i = 0; i < paramNames.size(); i++) {
            if (grads.get(i).get(0) == null) {
                continue; // fixed parameter: no gradient, no update
            }
            kvKeys.add(paramNames.get(i));
            kvGrads.add(grads.get(i));
            kvWeights.add(weights.get(i));
            int idx = optimizerParamNames == null ? i : optimizerParamNames.indexOf(paramNames.get(i));
            for (int d = 0; d < k; d++) {
                keys.get(d).add(idx * k + d);
                g.get(d).add(grads.get(i).get(d));
                w.get(d).add(weights.get(i).get(d));
            }
        }
        // per device, one updater call for every parameter: one fused native call
        updateLists = new UpdateLists(keys, g, w, kvKeys, kvGrads, kvWeights, List.copyOf(execs));
        return updateLists;
    }

    @Override
    public List<NDArray> getOutputs() {
        assertBoundAndInit("get_outputs");
        return execGroup.mergedOutputs();
    }

    @Override
    public List<List<NDArray>> getOutputsPerDevice() {
        assertBoundAndInit("get_outputs");
        return execGroup.outputsPerDevice();
    }

    @Override
    public List<NDArray> getInputGrads() {
        assertInputsNeedGrad("get_input_grads");
        return execGroup.mergedInputGrads();
    }

    /** Input gradients per input per device. */
    public List<List<NDArray>> getInputGradsPerDevice() {
        assertInputsNeedGrad("get_input_grads");
        return execGroup.inputGradsPerDevice();
    }

    @Override
    public void updateMetric(EvalMetric metric, List<NDArray> labels, boolean preSliced) {
        execGroup.updateMetric(metric, labels, preSliced);
    }

    /** State arrays per state per device (MXNet requires merge_multi_context=False). */
    public List<List<NDArray>> getStates() {
        assertBoundAndInit("get_states");
        List<List<NDArray>> res = new ArrayList<>();
        for (String s : stateNames) {
            List<NDArray> l = new ArrayList<>();
            for (Executor ex : execGroup.executors()) {
                l.add(ex.argDict().get(s));
            }
            res.add(l);
        }
        return res;
    }

    /** Sets the states from per-state per-device arrays ({@code states}) or to a scalar ({@code value}); exactly one. */
    public void setStates(List<List<NDArray>> states, Double value) {
        assertBoundAndInit("set_states");
        if ((states == null) == (value == null)) {
            throw new IllegalArgumentException("set_states: give exactly one of states and value");
        }
        List<Executor> execs = execGroup.executors();
        for (int i = 0; i < stateNames.size(); i++) {
            for (int d = 0; d < execs.size(); d++) {
                NDArray dst = execs.get(d).argDict().get(stateNames.get(i));
                if (value != null) {
                    dst.fill(value);
                } else {
                    states.get(i).get(d).copyTo(dst);
                }
            }
        }
    }

    @Override
    public void installMonitor(Monitor mon) {
        assertBound("install_monitor");
        monitor = mon;
        execGroup.executors().forEach(mon::install);
    }

    // ---- checkpoints ---------------------------------------------------------------------------

    /**
     * Writes {@code prefix-symbol.json} (without AMP casts, as MXNet's default {@code
     * remove_amp_cast=True}), {@code prefix-%04d.params} and optionally {@code prefix-%04d.states}.
     */
    @Override
    public void saveCheckpoint(String prefix, int epoch, boolean saveOptimizerStates) throws IOException {
        saveCheckpoint(prefix, epoch, saveOptimizerStates, true);
    }

    /**
     * As {@link #saveCheckpoint(String, int, boolean)}; {@code removeAmpCast=false} keeps the
     * {@code amp_cast} / {@code amp_multicast} nodes of an AMP-converted symbol in the JSON.
     */
    public void saveCheckpoint(String prefix, int epoch, boolean saveOptimizerStates, boolean removeAmpCast)
            throws IOException {
        List<Map<String, NDArray>> p = getParams();
        Checkpoints.save(prefix, epoch, symbol, p.get(0), p.get(1), removeAmpCast);
        if (saveOptimizerStates) {
            saveCheckpointStates(prefix, epoch);
        }
    }

    /** Writes the optimizer states to {@code <prefix>-%04d.states} and logs it (saveCheckpoint of Module and BucketingModule). */
    void saveCheckpointStates(String prefix, int epoch) throws IOException {
        Path states = Checkpoints.statesFile(prefix, epoch);
        saveOptimizerStates(states);
        logger.info("Saved optimizer state to \"{}\"", states);
    }

    /**
     * Loads {@code prefix-symbol.json} and {@code prefix-%04d.params} into a new module built by
     * {@code configure} (data/label names, contexts, ...); parameters count as initialized and are
     * copied at bind. With {@code loadOptimizerStates} the {@code .states} file is loaded at the end
     * of initOptimizer.
     */
    public static Module load(String prefix, int epoch, boolean loadOptimizerStates, java.util.function.Consumer<Builder> configure)
            throws IOException {
        Checkpoints.Checkpoint ck = Checkpoints.load(prefix, epoch);
        Builder b = new Builder(ck.symbol());
        if (configure != null) {
            configure.accept(b);
        }
        Module m;
        try {
            m = b.build();
        } catch (RuntimeException e) {
            ck.close();
            throw e;
        }
        m.argParams = new LinkedHashMap<>(ck.argParams());
        m.auxParams = new LinkedHashMap<>(ck.auxParams());
        m.paramsInitialized = true;
        if (loadOptimizerStates) {
            m.preloadOptStates = Checkpoints.statesFile(prefix, epoch);
        }
        return m;
    }

    /** {@code load(prefix, epoch, false, null)}. */
    public static Module load(String prefix, int epoch) throws IOException {
        return load(prefix, epoch, false, null);
    }

    /** Writes the optimizer states (MXNet's .states pickle), atomically. */
    public void saveOptimizerStates(Path file) throws IOException {
        checkOpen();
        assertOptimizerInitialized("save_optimizer_states");
        if (updateOnKvstore) {
            kvstore.saveOptimizerStates(file);
        } else {
            AtomicFiles.write(file, updater.getStates(false));
        }
    }

    /** Loads optimizer states written by {@link #saveOptimizerStates} or by MXNet. */
    public void loadOptimizerStates(Path file) throws IOException {
        checkOpen();
        assertOptimizerInitialized("load_optimizer_states");
        if (updateOnKvstore) {
            kvstore.loadOptimizerStates(file);
        } else {
            updater.setStates(Files.readAllBytes(file));
        }
    }

    // ---- lifecycle -----------------------------------------------------------------------------

    private void closeParams() {
        if (!paramsAliased) {
            if (argParams != null) {
                argParams.values().forEach(NDArray::close);
            }
            if (auxParams != null) {
                auxParams.values().forEach(NDArray::close);
            }
        }
        argParams = null;
        auxParams = null;
        paramsAliased = false;
    }

    @Override
    public void close() {
        if (!markClosed()) {
            return;
        }
        releaseOptimizer();
        if (execGroup != null) {
            execGroup.close();
            execGroup = null;
        }
        closeParams();
        binded = false;
    }

    @Override
    public String toString() {
        Map<String, Object> m = new HashMap<>();
        m.put("binded", binded);
        m.put("params_initialized", paramsInitialized);
        m.put("optimizer_initialized", optimizerInitialized);
        return "Module" + m;
    }
}
