package dev.kiln.bench;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.init.InitDesc;
import dev.kiln.init.Initializer;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.optimizer.FusedUpdate;
import dev.kiln.symbol.Symbol;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * Kiln's side of a network benchmark: the network bound once with its inputs in place (inputs
 * need no gradient), parameters initialized (BatchNorm's moving variance to 1), and SGD with
 * momentum for every parameter in one native {@link FusedUpdate} call. {@link #run()} is one
 * forward + backward + update, {@link #forwardBackward()} the same without the update and
 * {@link #forward()} an inference forward. Bound for inference ({@code train} false), no gradient
 * is planned and only {@link #forward()} may be called. Owns the executor, the momentum arrays
 * and the update; not thread-safe.
 */
final class KilnTrainStep implements AutoCloseable {
    final Executor exec;
    private final boolean train;
    private final FusedUpdate update = new FusedUpdate();
    private final List<NDArray> moms = new ArrayList<>();
    private final double[] lr;

    /**
     * @param inputs values of the graph's inputs (data, labels) by name, with their shapes in {@code shapes}
     * @param init the parameter initializer, called with the name {@code initName} maps each parameter to
     */
    KilnTrainStep(Symbol net, Map<String, long[]> shapes, Map<String, float[]> inputs, Initializer init,
            UnaryOperator<String> initName, double learningRate, double momentum) {
        this(net, shapes, inputs, init, initName, learningRate, momentum, true);
    }

    /** As above; {@code train} false binds for inference (no gradients, no update). */
    KilnTrainStep(Symbol net, Map<String, long[]> shapes, Map<String, float[]> inputs, Initializer init,
            UnaryOperator<String> initName, double learningRate, double momentum, boolean train) {
        this.train = train;
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            reqs.put(a, train && !inputs.containsKey(a) ? GradReq.WRITE : GradReq.NULL);
        }
        exec = Executor.simpleBind(net, Context.cpu(), shapes, Map.of(), reqs, new Executor.Options());
        inputs.forEach((k, v) -> exec.argDict().get(k).set(v));
        Initializer.seed(42);
        exec.argDict().forEach((k, w) -> {
            if (!inputs.containsKey(k)) {
                init.init(new InitDesc(initName.apply(k)), w);
            }
        });
        exec.auxDict().forEach((k, a) -> {  // BatchNorm: moving mean 0, moving variance 1
            float[] v = new float[(int) a.size()];
            Arrays.fill(v, k.endsWith("moving_var") ? 1f : 0f);
            a.set(v);
        });
        Map<String, Object> sgd = Map.of("momentum", momentum, "wd", 0.0, "rescale_grad", 1.0);
        for (Map.Entry<String, NDArray> e : exec.gradDict().entrySet()) {
            NDArray w = exec.argDict().get(e.getKey());
            NDArray mom = NDArray.zeros(w.shape(), DType.FLOAT32, Context.cpu()).detach();
            moms.add(mom);
            update.add("sgd_mom_update", sgd, List.of("lr"), List.of(w, e.getValue(), mom), List.of(w));
        }
        lr = new double[update.size()];
        Arrays.fill(lr, learningRate);
        System.out.println("# kiln threads=" + Engine.numThreads() + " simd=" + Engine.simdIsa() + " blas="
                + Engine.blasConfig());
    }

    /** One training step: forward, backward, SGD-momentum update. */
    void run() {
        exec.forwardBackward();
        update.run(lr);
    }

    /** Forward (training mode) and backward, no update. */
    void forwardBackward() {
        exec.forwardBackward();
    }

    /** An inference forward. */
    void forward() {
        exec.forward(false);
    }

    /**
     * Mean cross-entropy of a forward on {@code labels} (the graph ends in SoftmaxOutput), in
     * training mode when bound for training (BatchNorm on the batch's statistics).
     */
    double loss(float[] labels) {
        exec.forward(train);
        return Nets.crossEntropy(exec.outputs().get(0).toFloatArray(), labels);
    }

    @Override
    public void close() {
        update.close();
        moms.forEach(NDArray::close);
        exec.close();
    }
}
