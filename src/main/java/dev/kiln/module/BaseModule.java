package dev.kiln.module;

import dev.kiln.callback.BatchEndCallback;
import dev.kiln.callback.BatchEndParam;
import dev.kiln.callback.EpochEndCallback;
import dev.kiln.init.Initializer;
import dev.kiln.init.Uniform;
import dev.kiln.io.DataBatch;
import dev.kiln.io.DataDesc;
import dev.kiln.io.DataIter;
import dev.kiln.kvstore.Collective;
import dev.kiln.kvstore.CollectiveException;
import dev.kiln.kvstore.DistributedTrainingException;
import dev.kiln.kvstore.KVStore;
import dev.kiln.metric.EvalMetric;
import dev.kiln.metric.Metrics;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.NoSuchElementException;

/**
 * MXNet's {@code BaseModule}: the state machine (bound, for training, inputs need grad, params
 * initialized, optimizer initialized) and the high-level API ({@link #fit}, {@link #score},
 * {@link #predict}, {@link #iterPredict}) written once on the intermediate API that subclasses
 * implement (bind, initParams, initOptimizer, forward, backward, update, ...).
 *
 * <p>Ownership: a module owns its executors, parameters and optimizer states and frees them in
 * {@link #close()} (idempotent; any use after close throws). Arrays returned by
 * {@link #getOutputs}, {@link #getInputGrads} and {@link #getParams} belong to the module and stay
 * valid until the next forward (outputs) or close; arrays returned by {@link #predict} belong to
 * the caller. Batches taken from iterators by fit/score/predict are closed by them.
 *
 * <p>Thread-safety: not thread-safe; drive a module from one thread.
 */
public abstract class BaseModule implements AutoCloseable {
    protected Logger logger = LoggerFactory.getLogger(BaseModule.class);
    protected boolean binded;
    protected boolean forTraining;
    protected boolean inputsNeedGrad;
    protected boolean paramsInitialized;
    protected boolean optimizerInitialized;
    protected Symbol symbol;
    protected boolean closed;

    // ---- state ---------------------------------------------------------------------------------

    public boolean isBinded() {
        return binded;
    }

    public boolean isForTraining() {
        return forTraining;
    }

    public boolean inputsNeedGrad() {
        return inputsNeedGrad;
    }

    public boolean isParamsInitialized() {
        return paramsInitialized;
    }

    public boolean isOptimizerInitialized() {
        return optimizerInitialized;
    }

    /** The symbol (null for modules without one). */
    public Symbol symbol() {
        return symbol;
    }

    protected void checkOpen() {
        if (closed) {
            throw new IllegalStateException(getClass().getSimpleName() + " is closed");
        }
    }

    protected void assertBoundAndInit(String what) {
        checkOpen();
        if (!binded || !paramsInitialized) {
            throw new IllegalStateException(what + ": the module must be bound and its parameters initialized first (binded=" + binded
                    + ", params_initialized=" + paramsInitialized + ")");
        }
    }

    /** Throws unless the module is open and bound. */
    protected void assertBound(String what) {
        checkOpen();
        if (!binded) {
            throw new IllegalStateException(what + ": call bind first");
        }
    }

    /** {@link #assertBoundAndInit}, then throws unless the module was bound with {@code inputs_need_grad}. */
    protected void assertInputsNeedGrad(String what) {
        assertBoundAndInit(what);
        if (!inputsNeedGrad) {
            throw new IllegalStateException(what + ": bind with inputs_need_grad=True");
        }
    }

    /** Throws unless the optimizer is initialized. */
    protected void assertOptimizerInitialized(String what) {
        if (!optimizerInitialized) {
            throw new IllegalStateException(what + ": call init_optimizer first");
        }
    }

    /** MXNet's bind assertion: {@code inputs_need_grad} requires {@code for_training}. */
    protected static void checkBindFlags(boolean forTraining, boolean inputsNeedGrad) {
        if (!forTraining && inputsNeedGrad) {
            throw new IllegalArgumentException("inputs_need_grad requires for_training=True");
        }
    }

    /**
     * The start of every initParams: false when the parameters are already initialized and
     * {@code forceInit} is false (the call is then ignored, with a warning when {@code warnIfIgnored});
     * throws when closed or not bound.
     */
    protected boolean shouldInitParams(boolean forceInit, boolean warnIfIgnored) {
        checkOpen();
        if (paramsInitialized && !forceInit) {
            if (warnIfIgnored) {
                logger.warn("Parameters already initialized and force_init=False. init_params call ignored.");
            }
            return false;
        }
        if (!binded) {
            throw new IllegalStateException("call bind before initializing the parameters");
        }
        return true;
    }

    /**
     * MXNet's {@code set_params}, shared by the modules: without {@code allowMissing} it is
     * {@code initParams(null, argParams, auxParams, false, forceInit, initAllowExtra)}; otherwise,
     * unless the parameters are already initialized and {@code forceInit} is false (then it only
     * warns), the module must be bound, {@code setter} copies the values and the parameters count
     * as initialized.
     */
    protected void setParamsVia(Map<String, NDArray> argParams, Map<String, NDArray> auxParams, boolean allowMissing,
            boolean forceInit, boolean initAllowExtra, Runnable setter) {
        checkOpen();
        if (!allowMissing) {
            initParams(null, argParams, auxParams, false, forceInit, initAllowExtra);
            return;
        }
        if (paramsInitialized && !forceInit) {
            logger.warn("Parameters already initialized and force_init=False. set_params call ignored.");
            return;
        }
        assertBound("set_params");
        setter.run();
        paramsInitialized = true;
    }

    /**
     * The start of every initOptimizer: throws unless bound with initialized parameters; false
     * (after logging {@code ignoredWarning}) when the optimizer is already initialized and
     * {@code forceInit} is false.
     */
    protected boolean shouldInitOptimizer(boolean forceInit, String ignoredWarning) {
        assertBoundAndInit("init_optimizer");
        if (optimizerInitialized && !forceInit) {
            logger.warn(ignoredWarning);
            return false;
        }
        return true;
    }

    /** Marks the module closed; false when it already was (for idempotent {@link #close()}s). */
    protected boolean markClosed() {
        boolean first = !closed;
        closed = true;
        return first;
    }

    // ---- the intermediate API (subclasses) -----------------------------------------------------

    public abstract List<String> dataNames();

    public abstract List<String> outputNames();

    public abstract List<DataDesc> dataShapes();

    public abstract List<DataDesc> labelShapes();

    public abstract List<Map.Entry<String, long[]>> outputShapes();

    /** (arg params, aux params): the module's own CPU dictionaries. */
    public abstract List<Map<String, NDArray>> getParams();

    public abstract void initParams(Initializer initializer, Map<String, NDArray> argParams, Map<String, NDArray> auxParams,
            boolean allowMissing, boolean forceInit, boolean allowExtra);

    public abstract void setParams(Map<String, NDArray> argParams, Map<String, NDArray> auxParams, boolean allowMissing,
            boolean forceInit, boolean allowExtra);

    public abstract void bind(List<DataDesc> dataShapes, List<DataDesc> labelShapes, boolean forTraining, boolean inputsNeedGrad,
            boolean forceRebind, BaseModule sharedModule, Object gradReq);

    public abstract void initOptimizer(Object kvstore, Object optimizer, Map<String, ?> optimizerParams, boolean forceInit);

    /** Forward; {@code isTrain} null means the bind's {@code for_training}. */
    public abstract void forward(DataBatch batch, Boolean isTrain);

    public abstract void backward(List<NDArray> outGrads);

    public abstract void update();

    public abstract List<NDArray> getOutputs();

    public abstract List<List<NDArray>> getOutputsPerDevice();

    public abstract List<NDArray> getInputGrads();

    public abstract void updateMetric(EvalMetric metric, List<NDArray> labels, boolean preSliced);

    public abstract void installMonitor(Monitor monitor);

    // ---- concrete helpers ----------------------------------------------------------------------

    /** {@code forward(batch, true)} then {@code backward()}. */
    public void forwardBackward(DataBatch batch) {
        forward(batch, true);
        backward(null);
    }

    /** Binds for training with the given shapes. */
    public void bind(List<DataDesc> dataShapes, List<DataDesc> labelShapes) {
        bind(dataShapes, labelShapes, true, false, false, null, "write");
    }

    /** {@code initParams(Uniform(0.01))}. */
    public void initParams() {
        initParams(new Uniform(0.01), null, null, false, false, false);
    }

    public void initParams(Initializer initializer) {
        initParams(initializer, null, null, false, false, false);
    }

    /** {@code setParams(arg, aux, allow_missing=False, force_init=True, allow_extra=False)}. */
    public void setParams(Map<String, NDArray> argParams, Map<String, NDArray> auxParams) {
        setParams(argParams, auxParams, false, true, false);
    }

    /** {@code initOptimizer('local', optimizer, params)}. */
    public void initOptimizer(Object optimizer, Map<String, ?> optimizerParams) {
        initOptimizer("local", optimizer, optimizerParams, false);
    }

    /** Saves the parameters as {@code arg:<name>} / {@code aux:<name>} in MXNet's .params format, atomically. */
    public void saveParams(Path file) throws IOException {
        List<Map<String, NDArray>> p = getParams();
        Checkpoints.saveParams(file, p.get(0), p.get(1));
    }

    /** Loads a file written by {@link #saveParams} (or MXNet's save_params) and sets the parameters. */
    public void loadParams(Path file) throws IOException {
        try (Checkpoints.Checkpoint p = Checkpoints.loadParams(file, true)) {
            setParams(p.argParams(), p.auxParams());
        }
    }

    // ---- score / predict -------------------------------------------------------------------------

    /** {@code score(evalData, evalMetric)} with every other argument at MXNet's default. */
    public List<Map.Entry<String, Double>> score(DataIter evalData, Object evalMetric) {
        return score(evalData, evalMetric, null, null, null, true, 0);
    }

    /**
     * Runs the metric over {@code evalData} (forward with {@code is_train=false}) and returns its
     * local name/value pairs. Padded samples are counted, as in MXNet.
     */
    public List<Map.Entry<String, Double>> score(DataIter evalData, Object evalMetric, Integer numBatch,
            List<BatchEndCallback> batchEndCallback, List<BatchEndCallback> scoreEndCallback, boolean reset, int epoch) {
        assertBoundAndInit("score");
        if (reset) {
            evalData.reset();
        }
        EvalMetric metric = Metrics.create(evalMetric);
        metric.reset();
        int nbatch = 0;
        int actual = 0;
        while (evalData.hasNext()) {
            if (numBatch != null && nbatch == numBatch) {
                break;
            }
            try (DataBatch batch = evalData.next()) {
                prepare(batch);
                forward(batch, false);
                updateMetric(metric, batch.label(), false);
                if (batchEndCallback != null) {
                    Map<String, Object> locals = new LinkedHashMap<>();
                    locals.put("eval_batch", batch);
                    locals.put("self", this);
                    BatchEndParam p = new BatchEndParam(epoch, nbatch, metric, locals);
                    batchEndCallback.forEach(cb -> cb.invoke(p));
                }
            }
            nbatch++;
            actual++;
        }
        if (scoreEndCallback != null) {
            BatchEndParam p = new BatchEndParam(epoch, actual, metric, Map.of("self", this));
            scoreEndCallback.forEach(cb -> cb.invoke(p));
        }
        return metric.getNameValue();
    }

    /** One prediction step of {@link #iterPredict}: outputs with the pad removed (views owned by the module). */
    public record PredictStep(List<NDArray> outputs, int nbatch, DataBatch batch) {}

    /**
     * Iterates over predictions batch by batch. Each step's output views and batch are closed
     * when the iterator advances (or when it is exhausted): copy what you need to keep.
     */
    public Iterable<PredictStep> iterPredict(DataIter evalData, Integer numBatch, boolean reset) {
        assertBoundAndInit("iter_predict");
        if (reset) {
            evalData.reset();
        }
        return () -> new Iterator<>() {
            int nbatch;
            DataBatch current;
            List<NDArray> views = new ArrayList<>();

            private void release() {
                views.forEach(NDArray::close);
                views = new ArrayList<>();
                if (current != null) {
                    current.close();
                    current = null;
                }
            }

            @Override
            public boolean hasNext() {
                boolean more = (numBatch == null || nbatch < numBatch) && evalData.hasNext();
                if (!more) {
                    release();
                }
                return more;
            }

            @Override
            public PredictStep next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                release();
                current = evalData.next();
                prepare(current);
                forward(current, false);
                for (NDArray o : getOutputs()) {
                    views.add(o.slice(0, o.shape().get(0) - current.pad()));
                }
                return new PredictStep(List.copyOf(views), nbatch++, current);
            }
        };
    }

    /**
     * Predicts over {@code evalData}: outputs of every batch with the pad removed, concatenated
     * per output (MXNet's {@code merge_batches=True, always_output_list=True}). The arrays belong to
     * the caller. An empty iterator gives an empty list.
     */
    public List<NDArray> predict(DataIter evalData, Integer numBatch, boolean reset) {
        List<List<NDArray>> perBatch = predictBatches(evalData, numBatch, reset);
        if (perBatch.isEmpty()) {
            return new ArrayList<>();
        }
        try {
            int n = perBatch.get(0).size();
            for (List<NDArray> b : perBatch) {
                if (b.size() != n) {
                    throw new IllegalStateException("Cannot merge batches, as num of outputs is not the same in mini-batches. "
                            + "Maybe bucketing is used?");
                }
            }
            List<NDArray> merged = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                List<NDArray> parts = new ArrayList<>();
                for (List<NDArray> b : perBatch) {
                    parts.add(b.get(i));
                }
                merged.add(parts.size() == 1 ? parts.get(0).copy().detach() : Slicing.concat(parts, 0, parts.get(0).context()));
            }
            return merged;
        } finally {
            perBatch.forEach(l -> l.forEach(NDArray::close));
        }
    }

    /** {@code predict(evalData, null, true)}. */
    public List<NDArray> predict(DataIter evalData) {
        return predict(evalData, null, true);
    }

    /** Per batch, per output copies with the pad removed ({@code merge_batches=False}); the caller owns them. */
    public List<List<NDArray>> predictBatches(DataIter evalData, Integer numBatch, boolean reset) {
        List<List<NDArray>> out = new ArrayList<>();
        try {
            for (PredictStep s : iterPredict(evalData, numBatch, reset)) {
                List<NDArray> copies = new ArrayList<>();
                out.add(copies);
                for (NDArray o : s.outputs()) {
                    copies.add(o.copy().detach());
                }
            }
        } catch (RuntimeException e) {
            out.forEach(l -> l.forEach(NDArray::close));
            throw e;
        }
        return out;
    }

    /**
     * Predicts one array: forward with the bind's {@code for_training} (as MXNet does) and returns
     * a copy of the first output, owned by the caller.
     */
    public NDArray predict(NDArray data) {
        assertBoundAndInit("predict");
        // not closed: a DataBatch owns its arrays and this one is the caller's
        DataBatch b = new DataBatch(List.of(data), List.of());
        forward(b, null);
        return getOutputs().get(0).copy().detach();
    }

    /** Hook for sparse pulls before a forward; no-op for dense modules. */
    public void prepare(DataBatch batch) {
    }

    // ---- fit -----------------------------------------------------------------------------------

    /**
     * Arguments of {@link #fit}, with MXNet's names and defaults ({@code eval_metric='acc'},
     * {@code kvstore='local'}, {@code optimizer='sgd'}, {@code learning_rate=0.01},
     * {@code initializer=Uniform(0.01)}, {@code begin_epoch=0}; {@code num_epoch} is required).
     */
    public static final class FitArgs {
        DataIter evalData;
        Object evalMetric = "acc";
        final List<EpochEndCallback> epochEndCallback = new ArrayList<>();
        final List<BatchEndCallback> batchEndCallback = new ArrayList<>();
        Object kvstore = "local";
        Object optimizer = "sgd";
        Map<String, ?> optimizerParams = Map.of("learning_rate", 0.01);
        final List<BatchEndCallback> evalEndCallback = new ArrayList<>();
        final List<BatchEndCallback> evalBatchEndCallback = new ArrayList<>();
        Initializer initializer = new Uniform(0.01);
        Map<String, NDArray> argParams;
        Map<String, NDArray> auxParams;
        boolean allowMissing;
        boolean forceRebind;
        boolean forceInit;
        int beginEpoch;
        Integer numEpoch;
        Object validationMetric;
        Monitor monitor;
        final List<EpochSummaryListener> epochSummaryListeners = new ArrayList<>();

        public FitArgs evalData(DataIter v) { evalData = v; return this; }
        public FitArgs evalMetric(Object v) { evalMetric = v; return this; }
        public FitArgs epochEndCallback(EpochEndCallback... v) { epochEndCallback.addAll(List.of(v)); return this; }
        public FitArgs batchEndCallback(BatchEndCallback... v) { batchEndCallback.addAll(List.of(v)); return this; }
        public FitArgs kvstore(Object v) { kvstore = v; return this; }
        public FitArgs optimizer(Object v) { optimizer = v; return this; }
        public FitArgs optimizerParams(Map<String, ?> v) { optimizerParams = v; return this; }
        public FitArgs evalEndCallback(BatchEndCallback... v) { evalEndCallback.addAll(List.of(v)); return this; }
        public FitArgs evalBatchEndCallback(BatchEndCallback... v) { evalBatchEndCallback.addAll(List.of(v)); return this; }
        public FitArgs initializer(Initializer v) { initializer = v; return this; }
        public FitArgs argParams(Map<String, NDArray> v) { argParams = v; return this; }
        public FitArgs auxParams(Map<String, NDArray> v) { auxParams = v; return this; }
        public FitArgs allowMissing(boolean v) { allowMissing = v; return this; }
        public FitArgs forceRebind(boolean v) { forceRebind = v; return this; }
        public FitArgs forceInit(boolean v) { forceInit = v; return this; }
        public FitArgs beginEpoch(int v) { beginEpoch = v; return this; }
        public FitArgs numEpoch(int v) { numEpoch = v; return this; }
        public FitArgs validationMetric(Object v) { validationMetric = v; return this; }
        public FitArgs monitor(Monitor v) { monitor = v; return this; }
        /** Receives each epoch's train and validation values (e.g. a TrainingLog). */
        public FitArgs epochSummary(EpochSummaryListener v) { epochSummaryListeners.add(v); return this; }
    }

    /** Called at the end of each epoch of {@link #fit} with the train (global) and validation values. */
    @FunctionalInterface
    public interface EpochSummaryListener {
        void epochEnd(int epoch, List<Map.Entry<String, Double>> train, List<Map.Entry<String, Double>> validation);
    }

    /** Trains on {@code trainData} following MXNet's {@code fit} step by step (see the class docs). */
    public void fit(DataIter trainData, FitArgs a) {
        checkOpen();
        if (a.numEpoch == null) {
            throw new IllegalArgumentException("please specify number of epochs");
        }
        bind(trainData.provideData(), trainData.provideLabel(), true, false, a.forceRebind, null, "write");
        if (a.monitor != null) {
            installMonitor(a.monitor);
        }
        initParams(a.initializer, a.argParams, a.auxParams, a.allowMissing, a.forceInit, false);
        initOptimizer(a.kvstore, a.optimizer, a.optimizerParams, false);
        Object validationMetric = a.validationMetric != null ? a.validationMetric : a.evalMetric;
        EvalMetric evalMetric = Metrics.create(a.evalMetric);

        for (int epoch = a.beginEpoch; epoch < a.numEpoch; epoch++) {
            long tic = System.nanoTime();
            evalMetric.reset();
            int nbatch = 0;
            List<Map.Entry<String, Double>> evalNameVals = List.of();
            KVStore dist = distributedKVStore();
            StepAgreement agreement = dist == null ? null : new StepAgreement(dist);
            boolean first;
            try {
                first = dist == null ? trainData.hasNext() : agreement.start(trainData.hasNext()).await(epoch, 0);
            } catch (CollectiveException e) {
                throw new DistributedTrainingException(dist.rank(), dist.numWorkers(), epoch, 0, e);
            }
            DataBatch next = first ? trainData.next() : null;
            boolean end = next == null;
            while (!end) {
                DataBatch batch = next;
                try {
                    if (a.monitor != null) {
                        a.monitor.tic();
                    }
                    forwardBackward(batch);
                    if (agreement != null) {
                        // issued before update(): the small gather travels ahead of the gradient allreduce
                        agreement.start(trainData.hasNext());
                    }
                    update();
                    updateMetric(evalMetric, batch.label(), false);
                    if (agreement == null ? trainData.hasNext() : agreement.await(epoch, nbatch + 1)) {
                        next = trainData.next();
                        prepare(next);
                    } else {
                        next = null;
                        end = true;
                    }
                    if (a.monitor != null) {
                        a.monitor.tocPrint();
                    }
                    if (end) {
                        evalNameVals = evalMetric.getGlobalNameValue();
                    }
                    if (!a.batchEndCallback.isEmpty()) {
                        Map<String, Object> locals = new LinkedHashMap<>();
                        locals.put("data_batch", batch);
                        locals.put("self", this);
                        BatchEndParam p = new BatchEndParam(epoch, nbatch, evalMetric, locals);
                        for (BatchEndCallback cb : a.batchEndCallback) {
                            cb.invoke(p);
                        }
                    }
                    nbatch++;
                } catch (RuntimeException e) {
                    if (next != null && next != batch) {
                        next.close();
                    }
                    if (dist != null && e instanceof CollectiveException ce) {
                        throw new DistributedTrainingException(dist.rank(), dist.numWorkers(), epoch, nbatch, ce);
                    }
                    throw e;
                } finally {
                    batch.close();
                }
            }
            for (Map.Entry<String, Double> nv : evalNameVals) {
                logger.info(String.format(Locale.ROOT, "Epoch[%d] Train-%s=%f", epoch, nv.getKey(), nv.getValue()));
            }
            logger.info(String.format(Locale.ROOT, "Epoch[%d] Time cost=%.3f", epoch, (System.nanoTime() - tic) / 1e9));

            List<Map<String, NDArray>> params = getParams();
            setParams(params.get(0), params.get(1));
            for (EpochEndCallback cb : a.epochEndCallback) {
                cb.invoke(epoch, symbol, params.get(0), params.get(1));
            }
            List<Map.Entry<String, Double>> res = List.of();
            if (a.evalData != null) {
                res = score(a.evalData, validationMetric, null, a.evalBatchEndCallback, a.evalEndCallback, true, epoch);
                for (Map.Entry<String, Double> nv : res) {
                    logger.info(String.format(Locale.ROOT, "Epoch[%d] Validation-%s=%f", epoch, nv.getKey(), nv.getValue()));
                }
            }
            for (EpochSummaryListener l : a.epochSummaryListeners) {
                l.epochEnd(epoch, evalNameVals, res);
            }
            trainData.reset();
        }
    }

    /** The distributed KVStore the module's updates go through, or null (single process). */
    protected KVStore distributedKVStore() {
        return null;
    }

    /**
     * Whether the epoch goes on with another batch, in a distributed store. Every rank must run the
     * same number of steps (each step is a collective), so the ranks agree through one 8-byte gather
     * per step: the epoch ends for all when any rank runs out (its partition was shorter). The gather
     * is started before the step's update, so its latency hides behind the gradient allreduce.
     */
    private final class StepAgreement {
        private final KVStore dist;
        private final ByteBuffer in = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        private final ByteBuffer out;
        private Collective.Work pending;
        private boolean mine;

        StepAgreement(KVStore dist) {
            this.dist = dist;
            this.out = ByteBuffer.allocateDirect(8 * dist.numWorkers()).order(ByteOrder.nativeOrder());
        }

        StepAgreement start(boolean hasData) {
            mine = hasData;
            in.putLong(0, hasData ? 1 : 0);
            pending = dist.collective().allgather(in, out);
            return this;
        }

        boolean await(int epoch, int nbatch) {
            pending.await();
            pending = null;
            boolean every = true;
            for (int r = 0; r < dist.numWorkers(); r++) {
                every &= out.getLong(8 * r) == 1;
            }
            if (mine && !every) {
                logger.warn(String.format(Locale.ROOT, "Epoch[%d] rank %d stops after %d batches with data left: another rank's "
                        + "partition ended (give every rank the same number of batches: num_parts/part_index with equal parts)", epoch,
                        dist.rank(), nbatch));
            }
            return every;
        }
    }

    /** Frees everything the module owns. Idempotent. */
    @Override
    public abstract void close();
}
