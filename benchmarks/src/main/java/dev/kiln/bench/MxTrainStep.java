package dev.kiln.bench;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.mxnet.engine.MxSymbolBlock;
import ai.djl.mxnet.jna.JnaUtils;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.initializer.Initializer;
import ai.djl.training.initializer.XavierInitializer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.djl.util.PairList;
import dev.kiln.symbol.Symbol;
import java.util.List;
import java.util.Map;

/**
 * MXNet 1.9.1's side of a network benchmark (the counterpart of {@link KilnTrainStep}): Kiln's
 * symbol exported as MXNet symbol JSON ({@link Symbol#toJson()}), run by DJL's
 * {@link MxSymbolBlock} as one CachedOp (static_alloc, static_shape), i.e. MXNet's symbolic
 * execution as its Module API runs it; SGD with momentum through DJL's Trainer (MXNet's
 * {@code sgd_mom_update} per parameter). Every call ends with {@code MXNDArrayWaitAll} (MXNet is
 * asynchronous). The graph ends in SoftmaxOutput, which produces the loss gradient itself.
 *
 * <p>{@link #run()} is forward + backward + update, {@link #forwardBackward()} without the
 * update; built with {@code train} false there is no trainer and only {@link #forward()} (an
 * inference forward, BatchNorm on its moving statistics) may be called. Owns the DJL model, the
 * trainer and the resident batch; not thread-safe.
 */
final class MxTrainStep implements AutoCloseable {
    private final Model model;
    private final MxSymbolBlock block;
    private final Trainer trainer;       // null for inference
    private final ParameterStore store;  // inference only
    private final NDManager mgr;
    private final NDArray x;
    private final NDArray y;

    /**
     * @param dataShape the shape of the input "data"; the labels ("softmax_label") are [dataShape[0]]
     * @param data the input values, {@code labels} the class labels
     */
    MxTrainStep(String name, Symbol net, long[] dataShape, float[] data, float[] labels, double lr, double momentum,
            boolean train) {
        Shape in = new Shape(dataShape);
        Shape lab = new Shape(dataShape[0]);
        model = Model.newInstance(name, Device.cpu(), "MXNet");
        MxNDManager mm = (MxNDManager) model.getNDManager();
        ai.djl.mxnet.engine.Symbol sym = ai.djl.mxnet.engine.Symbol.loadJson(mm, net.toJson());
        block = new MxSymbolBlock(mm, sym);
        block.setInputNames(List.of("data", "softmax_label"));
        // infer from "data" only: DJL 0.36's inferShape builds a wrong arg_ind_ptr for more than
        // one input and MXNet segfaults (shared/spec/peers.md); SoftmaxOutput infers the label
        Map<String, Shape> shapes = sym.inferShape(new PairList<>(List.of("data"), List.of(in)));
        for (Parameter p : block.getDirectParameters().values()) {
            p.setShape(shapes.get(p.getName()));
        }
        block.setInitializer(new XavierInitializer(), Parameter.Type.WEIGHT);
        block.setInitializer(Initializer.ZEROS, Parameter.Type.BIAS);
        model.setBlock(block);
        if (train) {
            Optimizer sgd = Optimizer.sgd().setLearningRateTracker(Tracker.fixed((float) lr))
                    .optMomentum((float) momentum).optWeightDecays(0f).build();
            // the Loss object is not used: SoftmaxOutput in the graph produces the gradient
            trainer = model.newTrainer(new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss()).optOptimizer(sgd));
            trainer.initialize(in, lab);
            mgr = trainer.getManager();
            store = null;
        } else {
            trainer = null;
            block.initialize(mm, DataType.FLOAT32, in, lab);
            mgr = mm;
            store = new ParameterStore(mm, false);
        }
        x = mgr.create(data, in);
        x.setName("data");
        y = mgr.create(labels, lab);
        y.setName("softmax_label");
        System.out.println("# mxnet " + ai.djl.engine.Engine.getEngine("MXNet").getVersion() + " via DJL "
                + ai.djl.engine.Engine.getDjlVersion() + " OMP_NUM_THREADS=" + System.getenv("OMP_NUM_THREADS")
                + " MXNET_CPU_WORKER_NTHREADS=" + System.getenv("MXNET_CPU_WORKER_NTHREADS"));
    }

    /** One training step: forward, backward, SGD-momentum update. */
    void run() {
        train(true, false);
    }

    /** Forward (training mode) and backward, no update. */
    void forwardBackward() {
        train(false, false);
    }

    /** The mean cross-entropy after one more forward + backward (no update): for end-of-trial checks. */
    double loss() {
        return train(false, true);
    }

    /** One forward + backward (+ update); the loss when asked (else NaN). */
    private double train(boolean update, boolean wantLoss) {
        try (NDManager sub = mgr.newSubManager()) {
            x.tempAttach(sub);
            y.tempAttach(sub);
            NDArray prob;
            try (GradientCollector gc = trainer.newGradientCollector()) {
                prob = trainer.forward(new NDList(x, y)).singletonOrThrow();
                prob.attach(sub);
                gc.backward(prob);  // SoftmaxOutput ignores the head gradient
            }
            if (update) {
                trainer.step();
            }
            double loss = wantLoss ? crossEntropy(prob) : Double.NaN;
            JnaUtils.waitAll();  // MXNet is asynchronous: the step is done only when its ops are
            return loss;
        }
    }

    /** An inference forward (softmax probabilities), waited for. */
    void forward() {
        try (NDManager sub = mgr.newSubManager()) {
            x.tempAttach(sub);
            y.tempAttach(sub);
            block.forward(store, new NDList(x, y), false).singletonOrThrow().attach(sub);
            JnaUtils.waitAll();
        }
    }

    /** The mean cross-entropy of an inference forward (for end-of-trial checks in inference mode). */
    double inferenceLoss() {
        try (NDManager sub = mgr.newSubManager()) {
            x.tempAttach(sub);
            y.tempAttach(sub);
            NDArray prob = block.forward(store, new NDList(x, y), false).singletonOrThrow();
            prob.attach(sub);
            return crossEntropy(prob);
        }
    }

    private double crossEntropy(NDArray prob) {
        return -prob.get(new NDIndex().addAllDim().addPickDim(y)).log().mean().getFloat();
    }

    @Override
    public void close() {
        if (trainer != null) {
            trainer.close();
        }
        model.close();
    }
}
