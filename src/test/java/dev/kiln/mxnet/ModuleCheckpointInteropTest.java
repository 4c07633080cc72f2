package dev.kiln.mxnet;

import ai.djl.mxnet.engine.MxNDManager;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.Csv;
import dev.kiln.io.NDArrayIter;
import dev.kiln.module.BaseModule;
import dev.kiln.module.Module;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Checkpoints between Kiln's Module and the real MXNet 1.9.1: a checkpoint saved by
 * {@code Module.saveCheckpoint} loads in MXNet ({@code MXSymbolCreateFromJSON} +
 * {@code MXNDArrayLoad}) and gives the same outputs; a {@code .params} file written by MXNet
 * ({@code MXNDArraySave}) loads through {@code Module.load} and gives MXNet's outputs. Trained on
 * the iris table.
 */
@ExtendWith(NoLeaks.class)
class ModuleCheckpointInteropTest {
    @TempDir
    Path tmp;

    static Symbol net() {
        Symbol h = Symbol.activation("relu1", Symbol.fullyConnected("fc1", Symbol.variable("data"), 16), "relu");
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc2", h, 3));
    }

    static Csv.Table[] iris() throws Exception {
        Path d = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "sklearn", "csviter");
        assumeTrue(Files.isDirectory(d), "shared data not available");
        return new Csv.Table[] {Csv.read(d.resolve("iris.data.csv")), Csv.read(d.resolve("iris.label.csv"))};
    }

    /** MXNet forward (inference) of {@code symbolJson} with the arrays of a .params file, on {@code x}. */
    static float[] mxnetForward(MxNDManager m, String symbolJson, Path params, float[] x, int rows) {
        ai.djl.mxnet.engine.Symbol sym = MxOracle.symbol(m, symbolJson);
        Map<String, ai.djl.ndarray.NDArray> loaded = MxOracle.load(m, params);
        Map<String, ai.djl.ndarray.NDArray> args = new LinkedHashMap<>();
        loaded.forEach((k, v) -> {
            if (k.startsWith("arg:")) {
                args.put(k.substring(4), v);
            }
        });
        args.put("data", MxOracle.create(m, x, rows, 4));
        args.put("softmax_label", m.zeros(new ai.djl.ndarray.types.Shape(rows)));
        try (MxOracle.Executor ex = new MxOracle.Executor(m, sym, args, Map.of())) {
            return ex.forward(false).outputs().get(0).toFloatArray();
        }
    }

    @Test
    void kilnCheckpointLoadsInMxnetWithSameOutputs() throws Exception {
        MxOracle.assumeAvailable();
        Csv.Table[] t = iris();
        float[] x = t[0].values();
        int rows = t[0].rows();
        String prefix = tmp.resolve("iris").toString();
        float[] kiln;
        try (NDScope s = NDScope.open();
             NDArrayIter it = NDArrayIter.builder().setData(x, rows, 4).optLabel(t[1].values(), rows).setBatchSize(10)
                     .optShuffle(true).optSeed(1).build();
             Module mod = new Module(net())) {
            Initializer.seed(11);
            mod.fit(it, new BaseModule.FitArgs().numEpoch(5).initializer(new Xavier())
                    .optimizerParams(Map.of("learning_rate", 0.05, "momentum", 0.9)));
            mod.saveCheckpoint(prefix, 5, true);
            NDArray all = NDArray.create(x, rows, 4);
            try (NDArray out = mod.predict(all)) {
                kiln = out.toFloatArray();
            }
        }
        try (MxNDManager m = MxOracle.newManager()) {
            float[] mx = mxnetForward(m, Files.readString(Path.of(prefix + "-symbol.json")), Path.of(prefix + "-0005.params"), x, rows);
            assertEquals(kiln.length, mx.length);
            for (int i = 0; i < mx.length; i++) {
                assertEquals(mx[i], kiln[i], 1e-5, "output " + i);
            }
        }
    }

    @Test
    void mxnetParamsLoadInKilnModule() throws Exception {
        MxOracle.assumeAvailable();
        Csv.Table[] t = iris();
        float[] x = t[0].values();
        int rows = t[0].rows();
        String prefix = tmp.resolve("mx").toString();
        Symbol sym = net();
        sym.save(Path.of(prefix + "-symbol.json"));
        float[] mx;
        try (MxNDManager m = MxOracle.newManager()) {
            // MXNet writes the parameters (random values drawn by MXNet itself)
            Map<String, ai.djl.ndarray.NDArray> arrays = new LinkedHashMap<>();
            arrays.put("arg:fc1_weight", m.randomNormal(0, 0.5f, new ai.djl.ndarray.types.Shape(16, 4), ai.djl.ndarray.types.DataType.FLOAT32));
            arrays.put("arg:fc1_bias", m.randomNormal(0, 0.1f, new ai.djl.ndarray.types.Shape(16), ai.djl.ndarray.types.DataType.FLOAT32));
            arrays.put("arg:fc2_weight", m.randomNormal(0, 0.5f, new ai.djl.ndarray.types.Shape(3, 16), ai.djl.ndarray.types.DataType.FLOAT32));
            arrays.put("arg:fc2_bias", m.randomNormal(0, 0.1f, new ai.djl.ndarray.types.Shape(3), ai.djl.ndarray.types.DataType.FLOAT32));
            MxOracle.save(Path.of(prefix + "-0003.params"), arrays);
            mx = mxnetForward(m, sym.toJson(), Path.of(prefix + "-0003.params"), x, rows);
        }
        try (NDScope s = NDScope.open(); Module mod = Module.load(prefix, 3)) {
            mod.bind(List.of(new dev.kiln.io.DataDesc("data", new long[] {rows, 4})), null, false, false, false, null, "write");
            float[] kiln;
            try (NDArray out = mod.predict(NDArray.create(x, rows, 4))) {
                kiln = out.toFloatArray();
            }
            for (int i = 0; i < mx.length; i++) {
                assertEquals(mx[i], kiln[i], 1e-5, "output " + i);
            }
        }
    }
}
