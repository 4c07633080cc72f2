package dev.kiln.module;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.io.DataBatch;
import dev.kiln.io.DataDesc;
import dev.kiln.metric.EvalMetric;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.symbol.Symbol;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One executor per device, each bound to its slice of the batch (MXNet's
 * {@code DataParallelExecutorGroup}). Forward copies each device's slice of the data and labels
 * into its executor; outputs, input gradients and parameters are merged or averaged across
 * devices on request.
 *
 * <p>Ownership: the group owns its executors (and through them every argument, gradient and aux
 * array) and the merged arrays it hands out; {@link #close()} frees them. Merged outputs stay
 * valid until the next forward. Thread-safety: not thread-safe.
 */
public final class DataParallelExecutorGroup implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DataParallelExecutorGroup.class);
    private final Symbol symbol;
    private final List<Context> contexts;
    private final List<Double> workload;
    private final List<String> paramNames;
    private final Set<String> fixedParamNames;
    private final List<String> stateNames;
    private final boolean forTraining;
    private final boolean inputsNeedGrad;
    private final Map<String, GradReq> gradReqs;
    private final List<String> argNames;
    private final List<String> auxNames;
    private final List<String> outputNames;
    private final int[] outputBatchAxes;
    private final Executor.Options options;

    /** Executors created at bind time (they own the parameter arrays). */
    private final List<Executor> bindExecs = new ArrayList<>();
    /** Executors in use: the bind-time ones, or ones re-derived from them by {@link #reshape}. */
    private final List<Executor> execs = new ArrayList<>();
    /** Arrays this group allocated for a shared-module bind (the shared module owns the rest). */
    private final List<NDArray> owned = new ArrayList<>();
    /**
     * Per device, MXNet's {@code shared_data_arrays}: non-parameter inputs (data, labels, states)
     * and their gradients ({@code "grad of <name>"}) that groups bound with this one as shared
     * group reuse through views when large enough (bucketing). Arrays added here by such a group
     * are owned by this group ({@link #owned}).
     */
    private final List<Map<String, NDArray>> sharedDataArrays = new ArrayList<>();
    /** Merged outputs/input grads handed out since the last forward (closed at the next one). */
    private final List<NDArray> handedOut = new ArrayList<>();

    private List<DataDesc> dataShapes;
    private List<DataDesc> labelShapes;
    private int batchSize;
    private long[][] slices;

    DataParallelExecutorGroup(Symbol symbol, List<Context> contexts, List<Double> workload, List<DataDesc> dataShapes,
            List<DataDesc> labelShapes, List<String> paramNames, boolean forTraining, boolean inputsNeedGrad,
            DataParallelExecutorGroup sharedGroup, List<String> fixedParamNames, Object gradReq, List<String> stateNames,
            Executor.Options options) {
        this.symbol = symbol;
        this.contexts = List.copyOf(contexts);
        this.workload = List.copyOf(workload);
        this.paramNames = List.copyOf(paramNames);
        this.fixedParamNames = new HashSet<>(fixedParamNames);
        this.stateNames = List.copyOf(stateNames);
        this.forTraining = forTraining;
        this.inputsNeedGrad = inputsNeedGrad;
        this.options = options == null ? new Executor.Options() : options;
        this.argNames = symbol.listArguments();
        this.auxNames = symbol.listAuxiliaryStates();
        this.outputNames = symbol.listOutputs();
        this.outputBatchAxes = new int[outputNames.size()];
        for (int i = 0; i < outputNames.size(); i++) {
            // MXNet: symbol[name].attr('__layout__') of each output's node; none -> batch axis 0
            outputBatchAxes[i] = DataDesc.batchAxis(symbol.get(i).attr("__layout__"));
        }
        List<String> dataNames = new ArrayList<>();
        dataShapes.forEach(d -> dataNames.add(d.name()));
        this.gradReqs = resolveGradReq(gradReq, dataNames);
        try {
            bindExecutors(dataShapes, labelShapes, sharedGroup);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private Map<String, GradReq> resolveGradReq(Object gradReq, List<String> dataNames) {
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        if (!forTraining) {
            argNames.forEach(n -> reqs.put(n, GradReq.NULL));
            return reqs;
        }
        if (gradReq instanceof String || gradReq instanceof GradReq || gradReq instanceof Map) {
            GradReq g = gradReq instanceof Map ? GradReq.WRITE : toReq(gradReq);
            for (String n : argNames) {
                if (paramNames.contains(n)) {
                    reqs.put(n, fixedParamNames.contains(n) ? GradReq.NULL : g);
                } else if (dataNames.contains(n)) {
                    reqs.put(n, inputsNeedGrad ? g : GradReq.NULL);
                } else {
                    reqs.put(n, GradReq.NULL);
                }
            }
            if (gradReq instanceof Map<?, ?> m) {
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!argNames.contains(String.valueOf(e.getKey()))) {
                        throw new IllegalArgumentException("grad_req names '" + e.getKey() + "', which is not an argument; arguments are "
                                + argNames);
                    }
                    reqs.put(String.valueOf(e.getKey()), toReq(e.getValue()));
                }
            }
            return reqs;
        }
        if (gradReq instanceof List<?> l) {
            if (l.size() != argNames.size()) {
                throw new IllegalArgumentException("grad_req list has " + l.size() + " entries but the symbol has " + argNames.size()
                        + " arguments " + argNames);
            }
            for (int i = 0; i < l.size(); i++) {
                reqs.put(argNames.get(i), toReq(l.get(i)));
            }
            return reqs;
        }
        throw new IllegalArgumentException("grad_req must be one of str, list, tuple, or dict.");
    }

    static GradReq toReq(Object o) {
        if (o instanceof GradReq g) {
            return g;
        }
        if (o instanceof String s) {
            switch (s) {
                case "write": return GradReq.WRITE;
                case "add": return GradReq.ADD;
                case "null": return GradReq.NULL;
                default: throw new IllegalArgumentException("grad_req must be 'write', 'add' or 'null', got '" + s + "'");
            }
        }
        throw new IllegalArgumentException("grad_req must be one of str, list, tuple, or dict.");
    }

    /**
     * Python's {@code _split_input_slice}: {@code round(w_d * B / sum(w))} with round half to even,
     * the shortfall to the last device, empty slices rejected.
     */
    static long[][] splitInputSlice(long batchSize, List<Double> workload) {
        double total = 0;
        for (double w : workload) {
            total += w;
        }
        long[] sizes = new long[workload.size()];
        long sum = 0;
        for (int i = 0; i < sizes.length; i++) {
            sizes[i] = (long) Math.rint(workload.get(i) * batchSize / total);
            sum += sizes[i];
        }
        if (sum < batchSize) {
            sizes[sizes.length - 1] += batchSize - sum;
        }
        long[][] s = new long[sizes.length][];
        long begin = 0;
        for (int i = 0; i < sizes.length; i++) {
            long end = Math.min(begin + sizes[i], batchSize);
            if (begin >= end) {
                throw new IllegalArgumentException("Too many slices. Some splits are empty.");
            }
            s[i] = new long[] {begin, end};
            begin = end;
        }
        return s;
    }

    private void decideSlices(List<DataDesc> descs) {
        int bs = -1;
        for (DataDesc d : descs) {
            int ax = d.batchAxis();
            if (ax < 0) {
                continue;
            }
            if (ax >= d.shape().length) {
                throw new IllegalArgumentException("batch axis " + ax + " of " + d + " is out of range");
            }
            int b = (int) d.shape()[ax];
            if (bs >= 0 && b != bs) {
                throw new IllegalArgumentException("all data must have the same batch size: batch_size = " + bs + ", but " + d.name()
                        + " has shape " + Arrays.toString(d.shape()));
            }
            bs = b;
        }
        if (bs < 0) {
            throw new IllegalArgumentException("no data with a batch axis among " + descs);
        }
        batchSize = bs;
        slices = splitInputSlice(bs, workload);
    }

    private Map<String, long[]> sliceShapes(int dev) {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (DataDesc d : allDescs()) {
            long[] s = d.shape().clone();
            int ax = d.batchAxis();
            if (ax >= 0) {
                s[ax] = slices[dev][1] - slices[dev][0];
            }
            shapes.put(d.name(), s);
        }
        return shapes;
    }

    private List<DataDesc> allDescs() {
        List<DataDesc> all = new ArrayList<>(dataShapes);
        if (labelShapes != null) {
            all.addAll(labelShapes);
        }
        return all;
    }

    private void bindExecutors(List<DataDesc> data, List<DataDesc> label, DataParallelExecutorGroup shared) {
        dataShapes = List.copyOf(data);
        labelShapes = label == null ? null : List.copyOf(label);
        decideSlices(allDescs());
        Map<String, Map<String, String>> attrs = symbol.attrDict();
        for (int dev = 0; dev < contexts.size(); dev++) {
            Map<String, long[]> shapes = sliceShapes(dev);
            Map<String, DType> types = new LinkedHashMap<>();
            for (DataDesc d : allDescs()) {
                Map<String, String> a = attrs.get(d.name());
                types.put(d.name(), a != null && a.containsKey("__dtype__") ? DType.fromId(Integer.parseInt(a.get("__dtype__")))
                        : d.dtype());
            }
            Executor ex;
            if (shared == null) {
                ex = Executor.simpleBind(symbol, contexts.get(dev), shapes, types, gradReqs, options);
                Map<String, NDArray> buf = new LinkedHashMap<>();
                for (String n : argNames) {
                    if (!paramNames.contains(n)) {
                        buf.put(n, ex.argDict().get(n));
                        if (ex.gradDict().containsKey(n)) {
                            buf.put("grad of " + n, ex.gradDict().get(n));
                        }
                    }
                }
                sharedDataArrays.add(buf);
            } else {
                ex = bindShared(shared, dev, shapes, types);
                sharedDataArrays.add(shared.sharedDataArrays.get(dev));
            }
            bindExecs.add(ex);
            execs.add(ex);
        }
    }

    /**
     * MXNet's {@code _get_or_reshape}: a view of {@code shared}'s buffer {@code key} when it has at
     * least as many elements (and the same dtype), else a new zero array that replaces the buffer
     * entry (owned by {@code shared}), with MXNet's warning when an existing one was too small.
     */
    private NDArray getOrReshape(DataParallelExecutorGroup shared, int dev, String key, long[] shape, DType type, Context ctx) {
        Map<String, NDArray> buf = shared.sharedDataArrays.get(dev);
        NDArray cur = buf.get(key);
        Shape want = new Shape(shape);
        if (cur != null && !cur.isClosed() && cur.size() >= want.size() && cur.dtype() == type) {
            if (cur.shape().equals(want)) {
                NDArray v = cur.reshape(shape).detach();
                owned.add(v);
                return v;
            }
            try (NDArray flat = cur.reshape(cur.size()).detach(); NDArray head = flat.slice(0, want.size()).detach()) {
                NDArray v = head.reshape(shape).detach();
                owned.add(v);
                return v;
            }
        }
        if (cur != null && cur.dtype() != type) {
            LOG.warn("Bucketing: data \"{}\" has type {} but the shared buffer holds {}; allocating a new buffer.", key, type,
                    cur.dtype());
        } else if (cur != null) {
            LOG.warn("Bucketing: data \"{}\" has a shape {}, which is larger than already allocated shape {}. Need to re-allocate. "
                    + "Consider putting default_bucket_key to be the bucket taking the largest input for better memory sharing.",
                    key, want, cur.shape());
        }
        NDArray a = NDArray.zeros(want, type, ctx).setName(key).detach();
        shared.owned.add(a);
        buf.put(key, a);
        NDArray v = a.reshape(shape).detach();
        owned.add(v);
        return v;
    }

    /**
     * Binds device {@code dev} sharing memory with {@code shared}'s executor there (MXNet's
     * {@code shared_exec} + {@code shared_buffer}, spec executor-and-memory-planner.md 1.10):
     * parameters, their gradients and aux states are the shared executor's arrays (same shape
     * required); other inputs and their gradients are views of the shared group's buffers when
     * large enough; intermediates go into the shared executor's memory pool.
     */
    private Executor bindShared(DataParallelExecutorGroup shared, int dev, Map<String, long[]> shapes, Map<String, DType> types) {
        Executor base = shared.bindExecs.get(dev);
        Map<String, NDArray> args = new LinkedHashMap<>();
        Map<String, NDArray> grads = new LinkedHashMap<>();
        Context ctx = contexts.get(dev);
        Map<String, long[]> inferred = null;
        for (String n : argNames) {
            if (paramNames.contains(n)) {
                NDArray b = base.argDict().get(n);
                if (b == null || !shared.paramNames.contains(n)) {
                    throw new IllegalArgumentException("shared bind: parameter '" + n + "' is not a parameter of the shared module "
                            + "(its parameters are " + shared.paramNames + "); every bucket must use the default bucket's parameters");
                }
                if (inferred == null) {
                    inferred = symbol.inferShapePartial(shapes).argShapeMap();
                }
                long[] want = inferred.get(n);
                if (want != null && Arrays.stream(want).allMatch(d -> d > 0) && !Arrays.equals(want, b.shape().dims())) {
                    throw new IllegalArgumentException("shared bind: parameter '" + n + "' needs shape " + Arrays.toString(want)
                            + " but the shared module's array has shape " + b.shape() + "; the memory of the shared array cannot be "
                            + "reused for this argument");
                }
                args.put(n, b);
                if (gradReqs.getOrDefault(n, GradReq.NULL) != GradReq.NULL) {
                    NDArray g = base.gradDict().get(n);
                    if (g == null) {
                        throw new IllegalArgumentException("shared bind: parameter '" + n + "' needs a gradient but the shared module "
                                + "has none for it (fixed, or bound for inference)");
                    }
                    grads.put(n, g);
                }
                continue;
            }
            long[] s = shapes.get(n);
            if (s == null) {
                // an input without a given shape (e.g. a label when binding without label shapes): the one
                // shape inference gives, as a plain bind does
                if (inferred == null) {
                    inferred = symbol.inferShapePartial(shapes).argShapeMap();
                }
                long[] inf = inferred.get(n);
                if (inf != null && inf.length > 0 && Arrays.stream(inf).allMatch(d -> d > 0)) {
                    s = inf;
                }
            }
            if (s == null) {
                throw new IllegalArgumentException("shared bind: no shape for input '" + n + "'");
            }
            DType t = types.getOrDefault(n, DType.FLOAT32);
            args.put(n, getOrReshape(shared, dev, n, s, t, ctx));
            if (gradReqs.getOrDefault(n, GradReq.NULL) != GradReq.NULL) {
                grads.put(n, getOrReshape(shared, dev, "grad of " + n, s, t, ctx));
            }
        }
        Map<String, NDArray> aux = new LinkedHashMap<>();
        for (String n : auxNames) {
            NDArray b = base.auxDict().get(n);
            if (b == null) {
                throw new IllegalArgumentException("shared bind: auxiliary state '" + n + "' is not one of the shared module's "
                        + base.auxDict().keySet());
            }
            aux.put(n, b);
        }
        return Executor.bind(symbol, ctx, args, grads, gradReqs, aux, options, base);
    }

    /** Re-derives the executors for new shapes from the bind-time ones (no-op when nothing changed). */
    void reshape(List<DataDesc> data, List<DataDesc> label) {
        if (data.equals(dataShapes) && (label == null ? labelShapes == null : label.equals(labelShapes))) {
            return;
        }
        List<DataDesc> oldData = dataShapes;
        List<DataDesc> oldLabel = labelShapes;
        long[][] oldSlices = slices;
        int oldBatch = batchSize;
        dataShapes = List.copyOf(data);
        labelShapes = label == null ? null : List.copyOf(label);
        List<Executor> fresh = new ArrayList<>();
        try {
            decideSlices(allDescs());
            for (int dev = 0; dev < contexts.size(); dev++) {
                Map<String, long[]> shapes = sliceShapes(dev);
                if (labelShapes == null && oldLabel != null) {
                    // reshaped without labels (MXNet: the batch had none): the label inputs take
                    // the shapes inferred from the data, so the executor stays consistent
                    Map<String, long[]> inferred = symbol.inferShapePartial(shapes).argShapeMap();
                    for (DataDesc l : oldLabel) {
                        long[] s = inferred.get(l.name());
                        if (s != null && Arrays.stream(s).allMatch(d -> d > 0)) {
                            shapes.put(l.name(), s);
                        }
                    }
                }
                fresh.add(bindExecs.get(dev).reshape(shapes));
            }
        } catch (RuntimeException e) {
            fresh.forEach(Executor::close);
            dataShapes = oldData;
            labelShapes = oldLabel;
            slices = oldSlices;
            batchSize = oldBatch;
            throw e;
        }
        closeHandedOut();
        for (int dev = 0; dev < execs.size(); dev++) {
            if (execs.get(dev) != bindExecs.get(dev)) {
                execs.get(dev).close();
            }
        }
        execs.clear();
        execs.addAll(fresh);
    }

    // ---- per-batch work ----------------------------------------------------------------------

    void forward(DataBatch batch, boolean isTrain) {
        loadInputs(batch);
        for (Executor ex : execs) {
            ex.forward(isTrain);
        }
    }

    /** Forward in training mode and backward, one native call per device (loss-terminated graphs). */
    void forwardBackward(DataBatch batch) {
        loadInputs(batch);
        for (Executor ex : execs) {
            ex.forwardBackward();
        }
    }

    private void loadInputs(DataBatch batch) {
        closeHandedOut();
        List<NDArray> data = batch.data();
        if (data.size() != dataShapes.size()) {
            throw new IllegalArgumentException("the batch has " + data.size() + " data arrays but the module expects "
                    + dataShapes.size() + " " + dataShapes);
        }
        for (int i = 0; i < data.size(); i++) {
            load(data.get(i), dataShapes.get(i));
        }
        List<NDArray> label = batch.label();
        if (labelShapes != null && !labelShapes.isEmpty() && label != null && !label.isEmpty()) {
            if (label.size() != labelShapes.size()) {
                throw new IllegalArgumentException("the batch has " + label.size() + " label arrays but the module expects "
                        + labelShapes.size() + " " + labelShapes);
            }
            for (int i = 0; i < label.size(); i++) {
                load(label.get(i), labelShapes.get(i));
            }
        }
    }

    private void load(NDArray src, DataDesc desc) {
        int ax = desc.batchAxis();
        for (int dev = 0; dev < execs.size(); dev++) {
            NDArray dst = execs.get(dev).argDict().get(desc.name());
            if (dst == null) {
                throw new IllegalArgumentException("'" + desc.name() + "' is not an argument of the symbol; arguments are " + argNames);
            }
            if (execs.size() == 1 || ax < 0) {
                src.copyTo(dst);
            } else {
                Slicing.copySlice(src, ax, slices[dev][0], slices[dev][1], dst);
            }
        }
    }

    void backward(List<NDArray> outGrads) {
        if (!forTraining) {
            throw new IllegalStateException("re-bind with for_training=True to run backward");
        }
        for (int dev = 0; dev < execs.size(); dev++) {
            Executor ex = execs.get(dev);
            if (outGrads == null || outGrads.isEmpty()) {
                ex.backward();
                continue;
            }
            List<NDArray> mine = new ArrayList<>();
            try {
                for (int i = 0; i < outGrads.size(); i++) {
                    NDArray g = outGrads.get(i);
                    int ax = i < outputBatchAxes.length ? outputBatchAxes[i] : 0;
                    if (execs.size() == 1 || ax < 0) {
                        mine.add(g.copyTo(ex.context()));
                    } else {
                        NDArray out = ex.outputs().get(i);
                        NDArray d = NDArray.zeros(out.shape(), g.dtype(), ex.context()).detach();
                        mine.add(d);
                        Slicing.copySlice(g, ax, slices[dev][0], slices[dev][1], d);
                    }
                }
                ex.backward(mine.toArray(new NDArray[0]));
            } finally {
                mine.forEach(NDArray::close);
            }
        }
    }

    /** Outputs: merged along each output's batch axis, or per output per device. */
    List<List<NDArray>> outputsPerDevice() {
        List<List<NDArray>> res = new ArrayList<>();
        for (int i = 0; i < outputNames.size(); i++) {
            List<NDArray> l = new ArrayList<>();
            for (Executor ex : execs) {
                l.add(ex.outputs().get(i));
            }
            res.add(l);
        }
        return res;
    }

    List<NDArray> mergedOutputs() {
        List<NDArray> res = new ArrayList<>();
        List<List<NDArray>> per = outputsPerDevice();
        for (int i = 0; i < per.size(); i++) {
            res.add(merge(per.get(i), outputBatchAxes[i]));
        }
        return res;
    }

    List<List<NDArray>> inputGradsPerDevice() {
        List<List<NDArray>> res = new ArrayList<>();
        for (DataDesc d : dataShapes) {
            List<NDArray> l = new ArrayList<>();
            for (Executor ex : execs) {
                NDArray g = ex.gradDict().get(d.name());
                if (g == null) {
                    throw new IllegalStateException("no gradient for input '" + d.name() + "' (grad_req null)");
                }
                l.add(g);
            }
            res.add(l);
        }
        return res;
    }

    List<NDArray> mergedInputGrads() {
        List<NDArray> res = new ArrayList<>();
        List<List<NDArray>> per = inputGradsPerDevice();
        for (int i = 0; i < per.size(); i++) {
            res.add(merge(per.get(i), dataShapes.get(i).batchAxis()));
        }
        return res;
    }

    private NDArray merge(List<NDArray> parts, int axis) {
        if (parts.size() == 1 || axis < 0) {
            return parts.get(0);
        }
        NDArray m = Slicing.concat(parts, axis, contexts.get(0));
        handedOut.add(m);
        return m;
    }

    private void closeHandedOut() {
        handedOut.forEach(NDArray::close);
        handedOut.clear();
    }

    /** Calls {@code metric.updateDict} once per device with that device's label slices and outputs. */
    void updateMetric(EvalMetric metric, List<NDArray> labels, boolean preSliced) {
        List<String> labelNames = new ArrayList<>();
        if (labelShapes != null) {
            labelShapes.forEach(d -> labelNames.add(d.name()));
        }
        for (int dev = 0; dev < execs.size(); dev++) {
            List<NDArray> temp = new ArrayList<>();
            try {
                Map<String, NDArray> lab = new LinkedHashMap<>();
                if (labels != null) {
                    for (int i = 0; i < labels.size(); i++) {
                        NDArray l = labels.get(i);
                        String name = i < labelNames.size() ? labelNames.get(i) : "label" + i;
                        int ax = i < labelDescs().size() ? labelDescs().get(i).batchAxis() : 0;
                        if (preSliced || execs.size() == 1 || ax < 0) {
                            lab.put(name, l);
                        } else if (ax == 0) {
                            NDArray v = l.slice(slices[dev][0], slices[dev][1]);
                            temp.add(v);
                            lab.put(name, v);
                        } else {
                            long[] s = l.shape().dims().clone();
                            s[ax] = slices[dev][1] - slices[dev][0];
                            NDArray v = NDArray.zeros(new Shape(s), l.dtype(), l.context()).detach();
                            temp.add(v);
                            Slicing.copySlice(l, ax, slices[dev][0], slices[dev][1], v);
                            lab.put(name, v);
                        }
                    }
                }
                Map<String, NDArray> preds = new LinkedHashMap<>();
                List<NDArray> outs = execs.get(dev).outputs();
                for (int i = 0; i < outputNames.size(); i++) {
                    preds.put(outputNames.get(i), outs.get(i));
                }
                metric.updateDict(lab, preds);
            } finally {
                temp.forEach(NDArray::close);
            }
        }
    }

    private List<DataDesc> labelDescs() {
        return labelShapes == null ? List.of() : labelShapes;
    }

    /** Writes the average over devices of each parameter and aux state into the given CPU arrays. */
    void getParams(Map<String, NDArray> argParams, Map<String, NDArray> auxParams) {
        for (String n : paramNames) {
            NDArray dst = argParams.get(n);
            if (dst != null) {
                average(n, false, dst);
            }
        }
        for (String n : auxNames) {
            NDArray dst = auxParams.get(n);
            if (dst != null) {
                average(n, true, dst);
            }
        }
    }

    private void average(String name, boolean isAux, NDArray dst) {
        if (execs.size() == 1) {
            src(0, name, isAux).copyTo(dst);
            return;
        }
        // summed in float64 for float64 and integer parameters (float32 would round them), in
        // float32 for float32 and 16-bit ones (MXNet sums in the parameter's type: float16 sums
        // of several devices are more exact here)
        DType accType = dst.dtype() == DType.FLOAT64 || !dst.dtype().isFloatingPoint() ? DType.FLOAT64 : DType.FLOAT32;
        try (NDArray acc = NDArray.zeros(dst.shape(), accType, dst.context()).detach()) {
            List<NDArray> parts = new ArrayList<>();
            for (int dev = 0; dev < execs.size(); dev++) {
                parts.add(src(dev, name, isAux));
            }
            NDArray.sumInto(parts, acc);
            NDArray.invokeInto("_div_scalar", Map.of("scalar", Integer.toString(execs.size())), acc, acc);
            acc.copyTo(dst);
        }
    }

    private NDArray src(int dev, String name, boolean isAux) {
        NDArray a = isAux ? execs.get(dev).auxDict().get(name) : execs.get(dev).argDict().get(name);
        if (a == null) {
            throw new IllegalArgumentException("'" + name + "' is not " + (isAux ? "an auxiliary state" : "an argument"));
        }
        return a;
    }

    /** Copies the given arrays into every executor (cast to the executor's dtype). */
    void setParams(Map<String, NDArray> argParams, Map<String, NDArray> auxParams, boolean allowExtra) {
        for (Executor ex : bindExecs) {
            copyInto(argParams, ex.argDict(), allowExtra, "arguments");
            copyInto(auxParams, ex.auxDict(), allowExtra, "auxiliary states");
        }
    }

    private static void copyInto(Map<String, NDArray> src, Map<String, NDArray> dst, boolean allowExtra, String what) {
        if (src == null) {
            return;
        }
        for (Map.Entry<String, NDArray> e : src.entrySet()) {
            NDArray d = dst.get(e.getKey());
            if (d == null) {
                if (!allowExtra) {
                    throw new IllegalArgumentException("Find name \"" + e.getKey() + "\" that is not in the " + what);
                }
                continue;
            }
            if (e.getValue() != d) {
                if (!e.getValue().shape().equals(d.shape())) {
                    throw new IllegalArgumentException("shape of '" + e.getKey() + "' " + e.getValue().shape()
                            + " does not match the bound " + d.shape());
                }
                e.getValue().copyTo(d);
            }
        }
    }

    // ---- accessors -----------------------------------------------------------------------------

    List<Executor> executors() {
        return execs;
    }

    List<Executor> bindExecutors() {
        return bindExecs;
    }

    int batchSize() {
        return batchSize;
    }

    long[][] slices() {
        return slices;
    }

    List<DataDesc> dataShapes() {
        return dataShapes;
    }

    List<DataDesc> labelShapes() {
        return labelShapes;
    }

    Map<String, GradReq> gradReqs() {
        return gradReqs;
    }

    List<String> paramNames() {
        return paramNames;
    }

    /** Device 0's output shapes with the batch axis set to the whole batch. */
    List<Map.Entry<String, long[]>> outputShapes() {
        List<Map.Entry<String, long[]>> res = new ArrayList<>();
        List<NDArray> outs = execs.get(0).outputs();
        for (int i = 0; i < outputNames.size(); i++) {
            long[] s = outs.get(i).shape().dims().clone();
            int ax = outputBatchAxes[i];
            if (ax >= 0 && ax < s.length) {
                s[ax] = batchSize;
            }
            res.add(Map.entry(outputNames.get(i), s));
        }
        return res;
    }

    /** Parameter gradients per device ({@code null} for parameters without one). */
    List<List<NDArray>> paramGrads() {
        List<List<NDArray>> res = new ArrayList<>();
        for (String n : paramNames) {
            List<NDArray> l = new ArrayList<>();
            for (Executor ex : execs) {
                l.add(ex.gradDict().get(n));
            }
            res.add(l);
        }
        return res;
    }

    /** Parameter arrays per device. */
    List<List<NDArray>> paramArrays() {
        List<List<NDArray>> res = new ArrayList<>();
        for (String n : paramNames) {
            List<NDArray> l = new ArrayList<>();
            for (Executor ex : execs) {
                l.add(ex.argDict().get(n));
            }
            res.add(l);
        }
        return res;
    }

    @Override
    public void close() {
        closeHandedOut();
        for (int i = 0; i < execs.size(); i++) {
            if (i >= bindExecs.size() || execs.get(i) != bindExecs.get(i)) {
                execs.get(i).close();
            }
        }
        execs.clear();
        bindExecs.forEach(Executor::close);
        bindExecs.clear();
        owned.forEach(NDArray::close);
        owned.clear();
        sharedDataArrays.clear();
    }
}
