package dev.kiln.bench;

import static org.bytedeco.pytorch.global.torch.cross_entropy_loss;
import static org.bytedeco.pytorch.global.torch.get_num_threads;
import static org.bytedeco.pytorch.global.torch.globalContext;
import static org.bytedeco.pytorch.global.torch.manual_seed;
import static org.bytedeco.pytorch.global.torch.randint;
import static org.bytedeco.pytorch.global.torch.set_num_threads;

import java.util.function.UnaryOperator;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.SGD;
import org.bytedeco.pytorch.SGDOptions;
import org.bytedeco.pytorch.Tensor;

/**
 * libtorch's side of a network benchmark (the counterpart of {@link KilnTrainStep}): a module,
 * SGD with momentum over its parameters, one resident batch with random class labels.
 * {@link #run()} is zero_grad, forward, cross-entropy, backward and step;
 * {@link #forwardBackward()} the same without the step; {@link #forward()} an inference forward
 * (call {@code module.eval()} first for BatchNorm's inference behaviour) under a NoGradGuard.
 * Holds the module, the optimizer and the tensors; not thread-safe.
 */
final class TorchTrainStep {
    private final Module net;  // kept reachable for as long as the optimizer holds its parameters
    private final UnaryOperator<Tensor> forward;
    private final SGD sgd;
    private final Tensor x;
    private final Tensor y;

    /**
     * Sets libtorch's intra-op threads and seeds it (42); call before building the module. With
     * {@code -Dbench.torch.mkldnn=false} it also switches oneDNN off (libtorch then convolves with
     * its own im2col + OpenBLAS kernels): libtorch 2.10's oneDNN convolution returned wrong values
     * for LeNet's conv2 shape on the project's machine (OpBench's check lines show it).
     */
    static void prepare(int threads) {
        if (!Boolean.parseBoolean(System.getProperty("bench.torch.mkldnn", "true"))) {
            globalContext().setUserEnabledMkldnn(false);
        }
        set_num_threads(threads);
        MlpTrainBench.checkEnvThreads("libtorch", threads);
        manual_seed(42);
    }

    /**
     * @param forward the module's forward (logits [labels, classes])
     * @param x the input batch
     * @param labels how many class labels the loss takes (rows of the logits)
     */
    TorchTrainStep(Module net, UnaryOperator<Tensor> forward, Tensor x, long classes, long labels, double lr,
            double momentum) {
        this.net = net;
        this.forward = forward;
        this.x = x;
        SGDOptions opts = new SGDOptions(lr);
        opts.momentum().put(momentum);
        sgd = new SGD(net.parameters(), opts);
        y = randint(0L, classes, new long[] {labels});
        System.out.println("# libtorch threads=" + get_num_threads() + " mkldnn=" + globalContext().userEnabledMkldnn());
    }

    /** One training step: zero_grad, forward, cross-entropy, backward, SGD step. */
    void run() {
        step(true);
    }

    /** The training step without the optimizer step. */
    void forwardBackward() {
        step(false);
    }

    private void step(boolean update) {
        try (PointerScope scope = new PointerScope()) {
            sgd.zero_grad(true);
            Tensor loss = cross_entropy_loss(forward.apply(x), y);
            loss.backward();
            if (update) {
                sgd.step();
            }
        }
    }

    /** An inference forward (no autograd graph); returns the number of output rows. */
    long forward() {
        try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            return forward.apply(x).size(0);
        }
    }

    /** The cross-entropy of the current parameters on the batch (no gradient kept). */
    float loss() {
        try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            return cross_entropy_loss(forward.apply(x), y).item_float();
        }
    }
}
