package dev.kiln.module;

import dev.kiln.init.Initializer;
import dev.kiln.io.DataBatch;
import dev.kiln.io.DataDesc;
import dev.kiln.metric.EvalMetric;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * MXNet's {@code SequentialModule}: a chain of modules where the outputs of one are the data of
 * the next. {@link #add} appends a module, optionally giving it the labels ({@code takeLabels})
 * and renaming the incoming data to its data names ({@code autoWiring}). Backward runs from the
 * last module to the first, each module's input gradients being the previous module's output
 * gradients (every module after the first is bound with {@code inputs_need_grad} when training).
 *
 * <p>Ownership: the sequential module owns the modules added to it and closes them in
 * {@link #close()}. Thread-safety: not thread-safe.
 */
public class SequentialModule extends BaseModule {
    private static final Logger LOG = LoggerFactory.getLogger(SequentialModule.class);

    private record Meta(boolean takeLabels, boolean autoWiring) {}

    private final List<BaseModule> modules = new ArrayList<>();
    private final List<Meta> metas = new ArrayList<>();
    private List<DataDesc> labelShapes;

    /** An empty sequential module (MXNet's {@code SequentialModule()}). */
    public SequentialModule() {
        this.logger = LOG;
    }

    /** An empty sequential module logging to {@code logger}. */
    public SequentialModule(Logger logger) {
        this.logger = logger == null ? LOG : logger;
    }

    /**
     * Appends {@code module} (taken over: closed with this module) and resets the bind,
     * parameter and optimizer flags.
     *
     * @param takeLabels the module receives the labels (and its metric is updated)
     * @param autoWiring the incoming data is renamed to the module's data names
     * @return this
     */
    public SequentialModule add(BaseModule module, boolean takeLabels, boolean autoWiring) {
        checkOpen();
        if (module == null) {
            throw new IllegalArgumentException("add: module is null");
        }
        if (module == this || modules.contains(module)) {
            throw new IllegalArgumentException("add: the module is already part of this SequentialModule");
        }
        modules.add(module);
        metas.add(new Meta(takeLabels, autoWiring));
        binded = false;
        paramsInitialized = false;
        optimizerInitialized = false;
        return this;
    }

    /** {@code add(module, false, false)}. */
    public SequentialModule add(BaseModule module) {
        return add(module, false, false);
    }

    /** The modules, in order (owned by this module). */
    public List<BaseModule> modules() {
        return List.copyOf(modules);
    }

    // ---- properties ----------------------------------------------------------------------------

    @Override
    public List<String> dataNames() {
        return modules.isEmpty() ? List.of() : modules.get(0).dataNames();
    }

    @Override
    public List<String> outputNames() {
        return modules.isEmpty() ? List.of() : modules.get(modules.size() - 1).outputNames();
    }

    @Override
    public List<DataDesc> dataShapes() {
        assertBound("data_shapes");
        return modules.get(0).dataShapes();
    }

    @Override
    public List<DataDesc> labelShapes() {
        assertBound("label_shapes");
        return labelShapes;
    }

    @Override
    public List<Map.Entry<String, long[]>> outputShapes() {
        assertBound("output_shapes");
        return modules.get(modules.size() - 1).outputShapes();
    }

    /** The last module's symbol (MXNet has no single symbol for a sequence). */
    @Override
    public Symbol symbol() {
        return modules.isEmpty() ? null : modules.get(modules.size() - 1).symbol();
    }

    // ---- parameters ----------------------------------------------------------------------------

    /** The union of every module's parameters (new maps; the arrays belong to the modules). */
    @Override
    public List<Map<String, NDArray>> getParams() {
        assertBoundAndInit("get_params");
        Map<String, NDArray> arg = new LinkedHashMap<>();
        Map<String, NDArray> aux = new LinkedHashMap<>();
        for (BaseModule m : modules) {
            List<Map<String, NDArray>> p = m.getParams();
            arg.putAll(p.get(0));
            aux.putAll(p.get(1));
        }
        return List.of(arg, aux);
    }

    @Override
    public void initParams(Initializer initializer, Map<String, NDArray> argParams, Map<String, NDArray> auxParams,
            boolean allowMissing, boolean forceInit, boolean allowExtra) {
        if (!shouldInitParams(forceInit, false)) {
            return;
        }
        for (BaseModule m : modules) {
            m.initParams(initializer, argParams, auxParams, allowMissing, forceInit, allowExtra);
        }
        Map<String, Integer> argNames = new HashMap<>();
        Map<String, Integer> auxNames = new HashMap<>();
        for (int i = 0; i < modules.size(); i++) {
            List<Map<String, NDArray>> p = modules.get(i).getParams();
            checkNames(argNames, p.get(0).keySet(), i);
            checkNames(auxNames, p.get(1).keySet(), i);
        }
        paramsInitialized = true;
    }

    private void checkNames(Map<String, Integer> known, Iterable<String> names, int layer) {
        for (String n : names) {
            Integer prev = known.get(n);
            if (prev != null) {
                throw new IllegalStateException("Duplicated parameter names: name \"" + n + "\" in layer " + layer + " ("
                        + modules.get(layer).getClass().getSimpleName() + ") is already used in layer " + prev + " ("
                        + modules.get(prev).getClass().getSimpleName() + ").");
            }
            known.put(n, layer);
        }
    }

    /**
     * Sets parameters on every module. Each module receives the whole dictionaries, so extra names
     * (the other modules' parameters) are always allowed here.
     */
    @Override
    public void setParams(Map<String, NDArray> argParams, Map<String, NDArray> auxParams, boolean allowMissing, boolean forceInit,
            boolean allowExtra) {
        setParamsVia(argParams, auxParams, allowMissing, forceInit, true, () -> {
            for (BaseModule m : modules) {
                m.setParams(argParams, auxParams, true, forceInit, true);
            }
        });
    }

    // ---- bind ----------------------------------------------------------------------------------

    @Override
    public void bind(List<DataDesc> dataShapes, List<DataDesc> labelShapes, boolean forTraining, boolean inputsNeedGrad,
            boolean forceRebind, BaseModule sharedModule, Object gradReq) {
        checkOpen();
        if (binded && !forceRebind) {
            logger.warn("Already bound, ignoring bind()");
            return;
        }
        checkBindFlags(forTraining, inputsNeedGrad);
        if (sharedModule != null) {
            throw new IllegalArgumentException("Shared module is not supported");
        }
        if (modules.isEmpty()) {
            throw new IllegalStateException("Attempting to bind an empty SequentialModule");
        }
        this.labelShapes = labelShapes;
        List<DataDesc> myData = dataShapes;
        boolean anybodyNeedsLabel = false;
        for (int i = 0; i < modules.size(); i++) {
            BaseModule m = modules.get(i);
            Meta meta = metas.get(i);
            List<DataDesc> myLabel = null;
            if (meta.takeLabels()) {
                myLabel = labelShapes;
                anybodyNeedsLabel = true;
            }
            boolean myInputsNeedGrad = inputsNeedGrad || (forTraining && i > 0);
            if (meta.autoWiring()) {
                List<String> names = m.dataNames();
                if (names.size() != myData.size()) {
                    throw new IllegalArgumentException("auto_wiring: module " + i + " has data names " + names + " but receives "
                            + myData.size() + " inputs " + myData);
                }
                List<DataDesc> renamed = new ArrayList<>();
                for (int k = 0; k < names.size(); k++) {
                    DataDesc d = myData.get(k);
                    renamed.add(new DataDesc(names.get(k), d.shape(), d.dtype(), d.layout()));
                }
                myData = renamed;
            }
            m.bind(myData, myLabel, forTraining, myInputsNeedGrad, forceRebind, null, gradReq);
            List<DataDesc> next = new ArrayList<>();
            for (Map.Entry<String, long[]> o : m.outputShapes()) {
                next.add(new DataDesc(o.getKey(), o.getValue()));
            }
            myData = next;
        }
        if (!anybodyNeedsLabel) {
            this.labelShapes = null;
        }
        this.forTraining = forTraining;
        this.inputsNeedGrad = inputsNeedGrad;
        this.binded = true;
    }

    @Override
    public void initOptimizer(Object kvstore, Object optimizer, Map<String, ?> optimizerParams, boolean forceInit) {
        if (!shouldInitOptimizer(forceInit, "optimizer already initialized, ignoring.")) {
            return;
        }
        for (BaseModule m : modules) {
            m.initOptimizer(kvstore, optimizer, optimizerParams, forceInit);
        }
        optimizerInitialized = true;
    }

    // ---- computation ---------------------------------------------------------------------------

    /**
     * Runs every module in turn; after each module but the last, the batch's data become that
     * module's outputs (the labels, pad, index and bucket key stay) and its provideData their
     * descriptions, named by the next module's data names when it is auto-wired and by the
     * outputs' names otherwise.
     */
    @Override
    public void forward(DataBatch batch, Boolean isTrain) {
        assertBoundAndInit("forward");
        DataBatch b = batch;
        for (int i = 0; i < modules.size(); i++) {
            BaseModule m = modules.get(i);
            m.forward(b, isTrain);
            if (i + 1 == modules.size()) {
                break;
            }
            List<NDArray> outs = m.getOutputs();
            List<Map.Entry<String, long[]>> shapes = m.outputShapes();
            boolean wire = metas.get(i + 1).autoWiring();
            List<String> nextNames = wire ? modules.get(i + 1).dataNames() : null;
            List<DataDesc> provide = new ArrayList<>();
            for (int k = 0; k < outs.size(); k++) {
                String name = wire && k < nextNames.size() ? nextNames.get(k) : shapes.get(k).getKey();
                provide.add(new DataDesc(name, outs.get(k).shape().dims()));
            }
            // a view of the batch: it never closes the arrays (they belong to the modules / the caller)
            b = new DataBatch(outs, batch.label(), batch.pad(), batch.index(), batch.bucketKey(), provide, batch.provideLabel());
        }
    }

    @Override
    public void backward(List<NDArray> outGrads) {
        assertBoundAndInit("backward");
        List<NDArray> grads = outGrads;
        for (int i = modules.size() - 1; i >= 0; i--) {
            BaseModule m = modules.get(i);
            m.backward(grads);
            if (i == 0) {
                break;
            }
            grads = m.getInputGrads();
        }
    }

    @Override
    public void update() {
        assertBoundAndInit("update");
        assertOptimizerInitialized("update");
        for (BaseModule m : modules) {
            m.update();
        }
    }

    @Override
    public List<NDArray> getOutputs() {
        assertBoundAndInit("get_outputs");
        return modules.get(modules.size() - 1).getOutputs();
    }

    @Override
    public List<List<NDArray>> getOutputsPerDevice() {
        assertBoundAndInit("get_outputs");
        return modules.get(modules.size() - 1).getOutputsPerDevice();
    }

    @Override
    public List<NDArray> getInputGrads() {
        assertInputsNeedGrad("get_input_grads");
        return modules.get(0).getInputGrads();
    }

    /** Updates the metric with every module that takes labels. */
    @Override
    public void updateMetric(EvalMetric metric, List<NDArray> labels, boolean preSliced) {
        assertBoundAndInit("update_metric");
        for (int i = 0; i < modules.size(); i++) {
            if (metas.get(i).takeLabels()) {
                modules.get(i).updateMetric(metric, labels, preSliced);
            }
        }
    }

    @Override
    public void installMonitor(Monitor monitor) {
        assertBound("install_monitor");
        for (BaseModule m : modules) {
            m.installMonitor(monitor);
        }
    }

    @Override
    public void close() {
        if (!markClosed()) {
            return;
        }
        for (int i = modules.size() - 1; i >= 0; i--) {
            modules.get(i).close();
        }
        binded = false;
    }
}
