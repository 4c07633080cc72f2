package dev.kiln.reliability;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.init.Uniform;
import dev.kiln.io.DataBatch;
import dev.kiln.io.DataDesc;
import dev.kiln.io.NDArrayIter;
import dev.kiln.module.Module;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.optimizer.SGD;
import dev.kiln.optimizer.Updater;
import dev.kiln.symbol.Symbol;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Named Java scenarios of the bad-input corpus (kind {@code scenario}): lifecycle misuse that
 * cannot be written as a data file. Each one releases everything it creates, also when it
 * throws, and ends by throwing the exception under test (or returning when the misuse is a
 * documented no-op, such as closing twice).
 */
final class Scenarios {
    private Scenarios() {}

    interface Body {
        void run() throws Exception;
    }

    private static final Map<String, Body> ALL = new LinkedHashMap<>();

    static void run(String name) throws Exception {
        Body b = ALL.get(name);
        if (b == null) {
            throw new IllegalStateException("no scenario " + name);
        }
        b.run();
    }

    private static Symbol mlp() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 3);
        return Symbol.softmaxOutput("softmax", fc);
    }

    private static Module boundModule(boolean init) {
        Module m = new Module(mlp());
        try {
            m.bind(Map.of("data", new long[] {2, 4}), Map.of("softmax_label", new long[] {2}), true);
            if (init) {
                m.initParams(new Uniform(0.1));
            }
            return m;
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    private static DataBatch batch() {
        List<NDArray> d = new ArrayList<>(List.of(NDArray.create(new float[8], 2, 4).detach()));
        List<NDArray> l = new ArrayList<>(List.of(NDArray.create(new float[2], 2).detach()));
        return new DataBatch(d, l);
    }

    private static Executor exec() {
        return Executor.simpleBind(mlp(), Context.cpu(), Map.of("data", new long[] {2, 4}, "softmax_label", new long[] {2}),
                GradReq.WRITE);
    }

    static {
        // ---- NDArray ----------------------------------------------------------------------
        ALL.put("nd-read-after-close", () -> {
            NDArray a = NDArray.create(new float[] {1, 2}, 2);
            a.close();
            a.toFloatArray();
        });
        ALL.put("nd-close-twice", () -> {
            NDArray a = NDArray.create(new float[] {1, 2}, 2);
            a.close();
            a.close();
        });
        ALL.put("nd-set-after-close", () -> {
            NDArray a = NDArray.zeros(3);
            a.close();
            a.set(new float[] {1, 2, 3});
        });
        ALL.put("nd-op-on-closed", () -> {
            NDArray a = NDArray.zeros(3);
            try (NDArray b = NDArray.zeros(3)) {
                a.close();
                b.add(a);
            }
        });
        ALL.put("nd-copyto-closed-dst", () -> {
            NDArray a = NDArray.zeros(3);
            try (NDArray b = NDArray.zeros(3)) {
                a.close();
                b.copyTo(a);
            }
        });
        ALL.put("nd-reshape-after-close", () -> {
            NDArray a = NDArray.zeros(2, 3);
            a.close();
            a.reshape(3, 2);
        });
        ALL.put("nd-set-wrong-length", () -> {
            try (NDArray a = NDArray.zeros(2, 3)) {
                a.set(new float[] {1, 2});
            }
        });
        ALL.put("nd-reshape-wrong-size", () -> {
            try (NDArray a = NDArray.zeros(2, 3)) {
                a.reshape(4, 2).close();
            }
        });
        ALL.put("nd-slice-out-of-range", () -> {
            try (NDArray a = NDArray.zeros(2, 3)) {
                a.slice(1, 5).close();
            }
        });
        ALL.put("nd-create-length-mismatch", () -> NDArray.create(new float[5], 2, 3).close());
        ALL.put("nd-negative-shape", () -> NDArray.zeros(2, -3).close());
        ALL.put("nd-add-shape-mismatch", () -> {
            try (NDArray a = NDArray.zeros(2, 3); NDArray b = NDArray.zeros(3, 2)) {
                a.add(b).close();
            }
        });
        ALL.put("nd-zeros-terabytes", () -> NDArray.zeros(new Shape(1L << 20, 1L << 20), DType.FLOAT32, Context.cpu()).close());
        ALL.put("nd-zeros-overflow", () -> NDArray.zeros(new Shape(1L << 40, 1L << 40), DType.FLOAT32, Context.cpu()).close());
        ALL.put("nd-fromBytes-short", () -> NDArray.fromBytes(new byte[7], new Shape(2, 1), DType.FLOAT32, Context.cpu()).close());
        ALL.put("nd-invoke-unknown-op", () -> {
            try (NDArray a = NDArray.zeros(2)) {
                NDArray.invoke("NoSuchOp", Map.of(), a).forEach(NDArray::close);
            }
        });
        ALL.put("nd-invoke-closed-input", () -> {
            NDArray a = NDArray.zeros(2);
            a.close();
            NDArray.invoke("sqrt", Map.of(), a).forEach(NDArray::close);
        });
        ALL.put("nd-save-closed", () -> {
            Path f = Files.createTempFile("kiln-bad", ".params");
            try {
                NDArray a = NDArray.zeros(2);
                a.close();
                NDArray.save(f, Map.of("a", a));
            } finally {
                Files.deleteIfExists(f);
            }
        });
        // ---- Executor ---------------------------------------------------------------------
        ALL.put("exec-forward-after-close", () -> {
            Executor e = exec();
            e.close();
            e.forward(false);
        });
        ALL.put("exec-close-twice", () -> {
            Executor e = exec();
            e.close();
            e.close();
        });
        ALL.put("exec-backward-after-close", () -> {
            Executor e = exec();
            e.forward(true);
            e.close();
            e.backward();
        });
        ALL.put("exec-output-after-close", () -> {
            Executor e = exec();
            e.forward(false);
            NDArray out = e.outputs().get(0);
            e.close();
            out.toFloatArray();
        });
        ALL.put("exec-arg-after-close", () -> {
            Executor e = exec();
            NDArray w = e.argDict().get("fc_weight");
            e.close();
            w.toFloatArray();
        });
        ALL.put("exec-reshape-after-close", () -> {
            Executor e = exec();
            e.close();
            e.reshape(Map.of("data", new long[] {4, 4}, "softmax_label", new long[] {4})).close();
        });
        ALL.put("exec-reshape-bad-shape", () -> {
            try (Executor e = exec()) {
                e.reshape(Map.of("data", new long[] {4, 5}, "softmax_label", new long[] {4})).close();
            }
        });
        ALL.put("exec-reshape-terabytes", () -> {
            // the label array (4 MB) is allocated first, then the data array fails: the label must be freed
            Map<String, long[]> shapes = new LinkedHashMap<>();
            shapes.put("softmax_label", new long[] {1L << 20});
            shapes.put("data", new long[] {1L << 20, 1L << 20});
            try (Executor e = exec()) {
                e.reshape(shapes).close();
            }
        });
        ALL.put("exec-reshape-unknown-input", () -> {
            try (Executor e = exec()) {
                e.reshape(Map.of("pixels", new long[] {4, 4})).close();
            }
        });
        ALL.put("exec-bind-missing-arg", () -> {
            try (NDArray d = NDArray.zeros(2, 4)) {
                Executor.bind(mlp(), Context.cpu(), Map.of("data", d), null, null, null, null).close();
            }
        });
        ALL.put("exec-bind-wrong-arg-shape", () -> {
            try (NDArray d = NDArray.zeros(2, 4); NDArray w = NDArray.zeros(3, 5); NDArray b = NDArray.zeros(3);
                 NDArray l = NDArray.zeros(2)) {
                Executor.bind(mlp(), Context.cpu(), Map.of("data", d, "fc_weight", w, "fc_bias", b, "softmax_label", l), null,
                        null, null, null).close();
            }
        });
        ALL.put("exec-bind-closed-arg", () -> {
            try (NDArray d = NDArray.zeros(2, 4); NDArray b = NDArray.zeros(3); NDArray l = NDArray.zeros(2)) {
                NDArray w = NDArray.zeros(3, 4);
                w.close();
                Executor.bind(mlp(), Context.cpu(), Map.of("data", d, "fc_weight", w, "fc_bias", b, "softmax_label", l), null,
                        null, null, null).close();
            }
        });
        ALL.put("exec-bind-wrong-dtype-arg", () -> {
            try (NDArray d = NDArray.zeros(2, 4); NDArray w = NDArray.zeros(new Shape(3, 4), DType.INT32, Context.cpu());
                 NDArray b = NDArray.zeros(3); NDArray l = NDArray.zeros(2)) {
                Executor.bind(mlp(), Context.cpu(), Map.of("data", d, "fc_weight", w, "fc_bias", b, "softmax_label", l), null,
                        null, null, null).close();
            }
        });
        ALL.put("exec-forward-after-caller-closed-arg", () -> {
            // documented: the executor keeps the storage of its bound arrays alive
            try (NDArray d = NDArray.zeros(2, 4); NDArray b = NDArray.zeros(3); NDArray l = NDArray.zeros(2)) {
                NDArray w = NDArray.zeros(3, 4);
                try (Executor e = Executor.bind(mlp(), Context.cpu(),
                        Map.of("data", d, "fc_weight", w, "fc_bias", b, "softmax_label", l), null, null, null, null)) {
                    w.close();
                    e.forward(false);
                    e.outputs().get(0).toFloatArray();
                }
            }
        });
        ALL.put("exec-backward-without-grads", () -> {
            try (Executor e = Executor.simpleBind(mlp(), Context.cpu(),
                    Map.of("data", new long[] {2, 4}, "softmax_label", new long[] {2}), GradReq.NULL)) {
                e.backward();
            }
        });
        ALL.put("exec-simplebind-terabytes", () -> Executor.simpleBind(Symbol.fullyConnected("fc", Symbol.variable("data"), 1 << 20),
                Context.cpu(), Map.of("data", new long[] {1 << 20, 1 << 20}), GradReq.WRITE).close());
        ALL.put("exec-simplebind-negative-dim", () -> Executor.simpleBind(mlp(), Context.cpu(),
                Map.of("data", new long[] {2, -4}, "softmax_label", new long[] {2}), GradReq.WRITE).close());
        // ---- Module -----------------------------------------------------------------------
        ALL.put("module-forward-before-bind", () -> {
            try (Module m = new Module(mlp()); DataBatch b = batch()) {
                m.forward(b, false);
            }
        });
        ALL.put("module-forward-before-init", () -> {
            try (Module m = boundModule(false); DataBatch b = batch()) {
                m.forward(b, false);
            }
        });
        ALL.put("module-update-before-initoptimizer", () -> {
            try (Module m = boundModule(true); DataBatch b = batch()) {
                m.forwardBackward(b);
                m.update();
            }
        });
        ALL.put("module-backward-before-bind", () -> {
            try (Module m = new Module(mlp())) {
                m.backward(null);
            }
        });
        ALL.put("module-initparams-before-bind", () -> {
            try (Module m = new Module(mlp())) {
                m.initParams(new Uniform(0.1));
            }
        });
        ALL.put("module-initoptimizer-before-bind", () -> {
            try (Module m = new Module(mlp())) {
                m.initOptimizer("sgd", Map.of("learning_rate", 0.1));
            }
        });
        ALL.put("module-getoutputs-before-bind", () -> {
            try (Module m = new Module(mlp())) {
                m.getOutputs();
            }
        });
        ALL.put("module-getparams-before-init", () -> {
            try (Module m = boundModule(false)) {
                m.getParams();
            }
        });
        ALL.put("module-inputgrads-without-flag", () -> {
            try (Module m = boundModule(true); DataBatch b = batch()) {
                m.forwardBackward(b);
                m.getInputGrads();
            }
        });
        ALL.put("module-backward-not-for-training", () -> {
            try (Module m = new Module(mlp())) {
                m.bind(Map.of("data", new long[] {2, 4}), Map.of("softmax_label", new long[] {2}), false);
                m.initParams(new Uniform(0.1));
                try (DataBatch b = batch()) {
                    m.forwardBackward(b);
                }
            }
        });
        ALL.put("module-save-states-before-initoptimizer", () -> {
            Path f = Files.createTempFile("kiln-bad", ".states");
            try (Module m = boundModule(true)) {
                m.saveOptimizerStates(f);
            } finally {
                Files.deleteIfExists(f);
            }
        });
        ALL.put("module-forward-after-close", () -> {
            Module m = boundModule(true);
            m.close();
            try (DataBatch b = batch()) {
                m.forward(b, false);
            }
        });
        ALL.put("module-close-twice", () -> {
            Module m = boundModule(true);
            m.close();
            m.close();
        });
        ALL.put("module-bind-after-close", () -> {
            Module m = new Module(mlp());
            m.close();
            m.bind(Map.of("data", new long[] {2, 4}), Map.of("softmax_label", new long[] {2}), true);
        });
        ALL.put("module-getoutputs-after-close", () -> {
            Module m = boundModule(true);
            try (DataBatch b = batch()) {
                m.forward(b, false);
            }
            m.close();
            m.getOutputs();
        });
        ALL.put("module-output-array-after-close", () -> {
            Module m = boundModule(true);
            NDArray out;
            try (DataBatch b = batch()) {
                m.forward(b, false);
                out = m.getOutputs().get(0);
            } finally {
                m.close();
            }
            out.toFloatArray();
        });
        ALL.put("module-param-array-after-close", () -> {
            Module m = boundModule(true);
            NDArray w = m.getParams().get(0).get("fc_weight");
            m.close();
            w.toFloatArray();
        });
        ALL.put("module-forward-wrong-batch-shape", () -> {
            try (Module m = boundModule(true)) {
                List<NDArray> d = new ArrayList<>(List.of(NDArray.create(new float[10], 2, 5).detach()));
                List<NDArray> l = new ArrayList<>(List.of(NDArray.create(new float[2], 2).detach()));
                try (DataBatch b = new DataBatch(d, l)) {
                    m.forward(b, false);
                }
            }
        });
        ALL.put("module-bind-unknown-data-name", () -> {
            try (Module m = new Module(mlp())) {
                m.bind(Map.of("pixels", new long[] {2, 4}), Map.of("softmax_label", new long[] {2}), true);
            }
        });
        ALL.put("module-bind-twice-no-force", () -> {
            try (Module m = boundModule(true)) {
                m.bind(List.of(new DataDesc("data", new long[] {2, 5})), List.of(new DataDesc("softmax_label", new long[] {2})),
                        true, false, false, null, "write");
                m.getOutputs();
            }
        });
        ALL.put("module-unknown-optimizer", () -> {
            try (Module m = boundModule(true)) {
                m.initOptimizer("nosuchopt", Map.of("learning_rate", 0.1));
            }
        });
        ALL.put("module-bad-optimizer-param", () -> {
            try (Module m = boundModule(true)) {
                m.initOptimizer("sgd", Map.of("momentum", "fast"));
            }
        });
        ALL.put("module-setparams-wrong-shape", () -> {
            try (Module m = boundModule(true); NDArray w = NDArray.zeros(5, 5); NDArray b = NDArray.zeros(3)) {
                m.setParams(Map.of("fc_weight", w, "fc_bias", b), Map.of(), false, true, false);
            }
        });
        // ---- Updater / iterators ----------------------------------------------------------
        ALL.put("updater-after-close", () -> {
            Updater u = new Updater(new SGD(Map.of()));
            u.close();
            u.getStates(false);
        });
        ALL.put("updater-close-twice", () -> {
            Updater u = new Updater(new SGD(Map.of()));
            u.close();
            u.close();
        });
        ALL.put("updater-update-closed-weight", () -> {
            try (Updater u = new Updater(new SGD(Map.of())); NDArray g = NDArray.zeros(3)) {
                NDArray w = NDArray.zeros(3);
                w.close();
                u.update(0, g, w);
            }
        });
        ALL.put("updater-update-shape-mismatch", () -> {
            try (Updater u = new Updater(new SGD(Map.of("momentum", 0.9))); NDArray g = NDArray.zeros(3); NDArray w = NDArray.zeros(4)) {
                u.update(0, g, w);
            }
        });
        ALL.put("ndarrayiter-mismatched-lengths", () -> {
            try (NDArray x = NDArray.zeros(4, 2); NDArray y = NDArray.zeros(3)) {
                NDArrayIter.builder().setData(x).optLabel(y).setBatchSize(2).build().close();
            }
        });
        ALL.put("ndarrayiter-zero-batch", () -> {
            try (NDArray x = NDArray.zeros(4, 2)) {
                NDArrayIter.builder().setData(x).setBatchSize(0).build().close();
            }
        });
    }
}
