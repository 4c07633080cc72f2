package dev.kiln.cnn;

import ai.djl.mxnet.engine.MxNDManager;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.executor.MemoryReport;
import dev.kiln.io.DataDesc;
import dev.kiln.io.MNISTIter;
import dev.kiln.module.BaseModule;
import dev.kiln.module.Module;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Real MXNet checkpoints and exported graphs: the weberlo LeNet (MXNet 1.4) predicts the MNIST
 * test set as MXNet does, and ResNet-18, SqueezeNet 1.0 and MXNet's 300x300 model1 bind with
 * shape inference, with a planned memory no larger than the real MXNet 1.9.1's for the same graph.
 */
@ExtendWith(NoLeaks.class)
class CnnCheckpointsTest {
    static Path checkpoints() {
        Path d = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "mxnet-checkpoints");
        assumeTrue(Files.isDirectory(d), "shared data not available: " + d);
        return d;
    }

    @Test
    void weberloLenetPredictsMnistLikeMxnet() throws Exception {
        String prefix = checkpoints().resolve("weberlo-lenet/lenet").toString();
        Path mnist = Path.of("data/mnist");
        int correct = 0;
        int total = 0;
        int[] first = new int[10];
        try (Module mod = Module.load(prefix, 1, false, b -> b.labelNames(List.of()));
             MNISTIter test = MNISTIter.builder().setImage(mnist.resolve("t10k-images-idx3-ubyte.gz"))
                     .setLabel(mnist.resolve("t10k-labels-idx1-ubyte.gz")).setBatchSize(100).optShuffle(false).build()) {
            mod.bind(List.of(new DataDesc("data", new long[] {100, 1, 28, 28})), null, false, false, false, null, "write");
            for (BaseModule.PredictStep st : mod.iterPredict(test, null, true)) {
                float[] p = st.outputs().get(0).toFloatArray();
                float[] y = st.batch().label().get(0).toFloatArray();
                int classes = p.length / y.length;
                for (int i = 0; i < y.length; i++) {
                    int arg = 0;
                    for (int c = 1; c < classes; c++) {
                        if (p[i * classes + c] > p[i * classes + arg]) {
                            arg = c;
                        }
                    }
                    if (total < 10) {
                        first[total] = arg;
                    }
                    correct += arg == (int) y[i] ? 1 : 0;
                    total++;
                }
            }
        }
        double acc = (double) correct / total;
        System.out.printf("weberlo LeNet on the MNIST test set: %.2f%% (%d images), first ten %s%n", 100 * acc, total,
                java.util.Arrays.toString(first));
        assertEquals(10000, total);
        assertArrayEquals(new int[] {7, 2, 1, 0, 4, 1, 4, 9, 5, 9}, first);
        assertEquals(0.9506, acc, 0.00005, "MXNet's accuracy with this checkpoint");
    }

    static final Pattern TOTAL = Pattern.compile("Total (\\d+) MB allocated");

    /** Binds {@code json} in Kiln and in MXNet at {@code dataShape}; returns {Kiln bytes, MXNet MB}. */
    static void compareMemory(String label, Path json, long[] dataShape, boolean training) throws Exception {
        Symbol sym = Symbol.load(json);
        String dataName = sym.listArguments().get(0);
        InferResult inf = sym.inferShape(Map.of(dataName, dataShape));
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : sym.listArguments()) {
            reqs.put(a, training && !a.equals(dataName) && !a.endsWith("_label") ? GradReq.WRITE : GradReq.NULL);
        }
        long kilnBytes;
        long kilnMxRules;
        try (Executor ex = Executor.simpleBind(sym, Context.cpu(), Map.of(dataName, dataShape), Map.of(), reqs,
                new Executor.Options())) {
            MemoryReport r = ex.memoryReport();
            kilnBytes = r.plannedBytes();
            kilnMxRules = r.mxnetPlannedBytes();
            if (training) {
                ex.forward(true);
                try (NDArray head = NDArray.zeros(ex.outputs().get(0).shape(), ex.outputs().get(0).dtype(), Context.cpu())) {
                    head.fill(1);
                    ex.backward(head);
                }
            } else {
                ex.forward(false);
            }
            assertEquals(inf.outShapes().get(0).length, ex.outputs().get(0).shape().ndim());
        }
        long mxMb = -1;
        if (MxOracle.available()) {
            try (MxNDManager m = MxOracle.newManager()) {
                ai.djl.mxnet.engine.Symbol mxSym = MxOracle.symbol(m, Files.readString(json));
                Map<String, ai.djl.ndarray.NDArray> args = new LinkedHashMap<>();
                Map<String, ai.djl.ndarray.NDArray> grads = new LinkedHashMap<>();
                List<String> names = sym.listArguments();
                for (int i = 0; i < names.size(); i++) {
                    ai.djl.ndarray.types.Shape s = new ai.djl.ndarray.types.Shape(inf.argShapes().get(i));
                    args.put(names.get(i), m.zeros(s));
                    if (reqs.get(names.get(i)) == GradReq.WRITE) {
                        grads.put(names.get(i), m.zeros(s));
                    }
                }
                Map<String, ai.djl.ndarray.NDArray> aux = new LinkedHashMap<>();
                List<String> auxNames = sym.listAuxiliaryStates();
                for (int i = 0; i < auxNames.size(); i++) {
                    aux.put(auxNames.get(i), m.ones(new ai.djl.ndarray.types.Shape(inf.auxShapes().get(i))));
                }
                try (MxOracle.Executor mx = new MxOracle.Executor(m, mxSym, args, grads, aux)) {
                    Matcher mt = TOTAL.matcher(mx.debugString());
                    assertTrue(mt.find(), "MXNet's debug string has its Total line");
                    mxMb = Long.parseLong(mt.group(1));
                }
            }
        }
        System.out.printf("%s %s%s: Kiln plans %.1f MB (%d bytes; MXNet's rules in Kiln: %.1f MB); real MXNet 1.9.1: %s%n", label,
                java.util.Arrays.toString(dataShape), training ? " training" : " inference", kilnBytes / 1048576.0, kilnBytes,
                kilnMxRules / 1048576.0, mxMb < 0 ? "not available" : "Total " + mxMb + " MB allocated");
        if (mxMb >= 0) {
            // MXNet prints whole MB rounded down: Kiln must not need more than that plus the rounding
            assertTrue(kilnBytes <= (mxMb + 1) * 1048576L, label + ": Kiln " + kilnBytes + " bytes vs MXNet " + mxMb + " MB");
        }
    }

    @Test
    void resnet18BindsAndPlansNoMoreThanMxnet() throws Exception {
        Path json = checkpoints().resolve("djl-symbols/resnet18_v1-symbol.json");
        compareMemory("resnet18_v1", json, new long[] {1, 3, 224, 224}, false);
        compareMemory("resnet18_v1", json, new long[] {8, 3, 224, 224}, true);
    }

    @Test
    void squeezenetBindsAndPlansNoMoreThanMxnet() throws Exception {
        Path json = checkpoints().resolve("djl-symbols/squeezenet1.0-symbol.json");
        compareMemory("squeezenet1.0", json, new long[] {1, 3, 224, 224}, false);
        compareMemory("squeezenet1.0", json, new long[] {8, 3, 224, 224}, true);
    }

    @Test
    void mxnetModel1BindsAndPlansNoMoreThanMxnet() throws Exception {
        Path json = checkpoints().resolve("apache-mxnet-fixtures/test_mkldnn_test_mkldnn_model_model1.json");
        compareMemory("model1", json, new long[] {1, 3, 300, 300}, false);
    }
}
