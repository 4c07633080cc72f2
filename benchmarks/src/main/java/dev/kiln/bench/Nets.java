package dev.kiln.bench;

import dev.kiln.symbol.Symbol;
import java.util.Locale;
import java.util.Random;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;

/**
 * The networks the executor benchmarks run, each defined once: the Kiln symbol (whose MXNet
 * symbol JSON, {@link Symbol#toJson()}, is what MXNet runs) and the libtorch module of the same
 * layers, from the benchmark classes that introduced them. Every network ends in a 10-way
 * classifier with a softmax cross-entropy loss. Immutable.
 */
enum Nets {
    /** MLP 784-512-512-10 (MlpTrainBench). */
    MLP(MlpTrainBench.KilnState::network, new long[] {784}, () -> {
        MlpTrainBench.TorchMlp m = new MlpTrainBench.TorchMlp();
        return new TorchNet(m, m::forward);
    }),
    /** LeNet on 1x28x28 (LenetTrainBench). */
    LENET(LenetTrainBench::network, new long[] {1, 28, 28}, () -> {
        LenetTrainBench.TorchLenet m = new LenetTrainBench.TorchLenet();
        return new TorchNet(m, m::forward);
    }),
    /** ResNet-18 at CIFAR size, 3x32x32 (ResNet18Bench). */
    RESNET18(ResNet18Bench::network, new long[] {3, 32, 32}, () -> {
        ResNet18Bench.TorchResNet18 m = new ResNet18Bench.TorchResNet18();
        return new TorchNet(m, m::forward);
    });

    static final int CLASSES = 10;

    /** A libtorch module and its forward (logits [batch, classes]). */
    record TorchNet(Module module, UnaryOperator<Tensor> forward) {}

    private final Supplier<Symbol> symbol;
    private final long[] sample;
    private final Supplier<TorchNet> torch;

    Nets(Supplier<Symbol> symbol, long[] sample, Supplier<TorchNet> torch) {
        this.symbol = symbol;
        this.sample = sample;
        this.torch = torch;
    }

    /** The network named by a benchmark parameter ("mlp", "lenet", "resnet18"). */
    static Nets of(String name) {
        return valueOf(name.toUpperCase(Locale.ROOT));
    }

    /** The Kiln symbol, ending in SoftmaxOutput(normalization=batch) named "softmax". */
    Symbol symbol() {
        return symbol.get();
    }

    /** A new libtorch module (parameters from libtorch's current seed). */
    TorchNet torch() {
        return torch.get();
    }

    /** The input shape for {@code batch} samples: [batch, sample...]. */
    long[] dataShape(int batch) {
        long[] s = new long[sample.length + 1];
        s[0] = batch;
        System.arraycopy(sample, 0, s, 1, sample.length);
        return s;
    }

    /** Uniform [0,1) inputs for {@code batch} samples, seeded: every engine gets the same batch. */
    float[] data(int batch) {
        long n = 1;
        for (long d : dataShape(batch)) {
            n *= d;
        }
        return uniform((int) n, 42);
    }

    /** {@code n} floats uniform in [0,1) from {@code seed}. */
    static float[] uniform(int n, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = r.nextFloat();
        }
        return x;
    }

    /** Random class labels 0..9 for {@code batch} samples, seeded. */
    static float[] labels(int batch) {
        Random r = new Random(43);
        float[] y = new float[batch];
        for (int i = 0; i < batch; i++) {
            y[i] = r.nextInt(CLASSES);
        }
        return y;
    }

    /** Mean cross-entropy of softmax probabilities {@code p} [labels.length, CLASSES] on {@code labels}. */
    static double crossEntropy(float[] p, float[] labels) {
        double l = 0;
        for (int k = 0; k < labels.length; k++) {
            l -= Math.log(Math.max(p[k * CLASSES + (int) labels[k]], 1e-12));
        }
        return l / labels.length;
    }
}
