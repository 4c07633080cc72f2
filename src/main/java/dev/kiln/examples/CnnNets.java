package dev.kiln.examples;

import dev.kiln.symbol.Symbol;

/**
 * The convolutional networks of the examples, tests and GPU benchmarks: LeNet for MNIST, a small
 * CIFAR ResNet and the ImageNet ResNet-50.
 */
public final class CnnNets {
    private CnnNets() {}

    private static long[] k(long v) {
        return new long[] {v, v};
    }

    /**
     * LeNet: conv 5x5 20 - relu - max pool 2 - conv 5x5 50 - relu - max pool 2 - fc 500 - relu -
     * fc 10 - SoftmaxOutput, on {@code data (N, 1, 28, 28)}.
     */
    public static Symbol lenet() {
        Symbol data = Symbol.variable("data");
        Symbol c1 = Symbol.activation("relu1", Symbol.convolution("conv1", data, k(5), 20, null, null), "relu");
        Symbol p1 = Symbol.pooling("pool1", c1, "max", k(2), k(2), null);
        Symbol c2 = Symbol.activation("relu2", Symbol.convolution("conv2", p1, k(5), 50, null, null), "relu");
        Symbol p2 = Symbol.pooling("pool2", c2, "max", k(2), k(2), null);
        Symbol f1 = Symbol.activation("relu3", Symbol.fullyConnected("fc1", Symbol.flatten("flatten", p2), 500), "relu");
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc2", f1, 10));
    }

    /** conv 3x3 (no bias) - BatchNorm - relu, the unit of the CIFAR ResNet. */
    private static Symbol convBn(String name, Symbol x, int filters, long stride, boolean relu) {
        Symbol c = Symbol.convolutionNoBias(name + "_conv", x, k(3), filters, k(stride), k(1), 1);
        Symbol b = Symbol.batchNorm(name + "_bn", c, false);
        return relu ? Symbol.activation(name + "_relu", b, "relu") : b;
    }

    /**
     * A CIFAR ResNet (He et al. 2016, section 4.2) with {@code n} basic blocks per stage: 6n + 2
     * layers (n = 3 is ResNet-20), widths 16/32/64, a 1x1 projection when the shape changes,
     * global average pooling and a 10-way SoftmaxOutput, on {@code data (N, 3, 32, 32)}.
     */
    public static Symbol cifarResNet(int n) {
        Symbol x = convBn("stem", Symbol.variable("data"), 16, 1, true);
        int[] widths = {16, 32, 64};
        int in = 16;
        for (int stage = 0; stage < 3; stage++) {
            for (int b = 0; b < n; b++) {
                String name = "s" + stage + "b" + b;
                long stride = stage > 0 && b == 0 ? 2 : 1;
                Symbol y = convBn(name + "a", x, widths[stage], stride, true);
                y = convBn(name + "b", y, widths[stage], 1, false);
                Symbol shortcut = x;
                if (stride != 1 || in != widths[stage]) {
                    shortcut = Symbol.batchNorm(name + "_proj_bn",
                            Symbol.convolutionNoBias(name + "_proj", x, k(1), widths[stage], k(stride), k(0), 1), false);
                }
                x = Symbol.activation(name + "_relu", y.plus(shortcut), "relu");
                in = widths[stage];
            }
        }
        Symbol pool = Symbol.globalPooling("pool", x, "avg");
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc", Symbol.flatten("flatten", pool), 10));
    }

    /** conv k x k (no bias) - BatchNorm - optional relu. */
    private static Symbol convBn(String name, Symbol x, int filters, long kernel, long stride, boolean relu) {
        Symbol c = Symbol.convolutionNoBias(name + "_conv", x, k(kernel), filters, k(stride), k(kernel / 2), 1);
        Symbol b = Symbol.batchNorm(name + "_bn", c, false);
        return relu ? Symbol.activation(name + "_relu", b, "relu") : b;
    }

    /**
     * ResNet-50 for ImageNet-size inputs (He et al. 2016, table 1; stride in the 3x3 convolution,
     * as torchvision's v1.5): a 7x7/2 stem with 3x3/2 max pooling, bottleneck stages of 3, 4, 6 and
     * 3 units (widths 64-256, 128-512, 256-1024, 512-2048, a 1x1 projection on each stage's first
     * unit), global average pooling and a {@code classes}-way SoftmaxOutput, on
     * {@code data (N, 3, 224, 224)}.
     */
    public static Symbol resnet50(int classes) {
        Symbol x = convBn("stem", Symbol.variable("data"), 64, 7, 2, true);
        x = Symbol.pooling("stem_pool", x, "max", k(3), k(2), k(1));
        int[] units = {3, 4, 6, 3};
        int[] widths = {64, 128, 256, 512};
        for (int stage = 0; stage < 4; stage++) {
            int w = widths[stage];
            for (int u = 0; u < units[stage]; u++) {
                String name = "s" + stage + "u" + u;
                long stride = stage > 0 && u == 0 ? 2 : 1;
                Symbol y = convBn(name + "a", x, w, 1, 1, true);
                y = convBn(name + "b", y, w, 3, stride, true);
                y = convBn(name + "c", y, 4 * w, 1, 1, false);
                Symbol shortcut = x;
                if (u == 0) {
                    shortcut = convBn(name + "_proj", x, 4 * w, 1, stride, false);
                }
                x = Symbol.activation(name + "_relu", y.plus(shortcut), "relu");
            }
        }
        Symbol pool = Symbol.globalPooling("pool", x, "avg");
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc", Symbol.flatten("flatten", pool), classes));
    }
}
