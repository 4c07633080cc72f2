package dev.kiln.module;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * MXNet's Monitor on Kiln's executor: MXNet's {@code test_monitor}, statistic values against an
 * independent computation, interval / pattern / sort, monitor_all names, and memory ownership.
 */
@ExtendWith(NoLeaks.class)
class MonitorTest {
    /** test_module.py::test_monitor's network: two FC + sigmoid pairs, LinearRegressionOutput named softmax. */
    static Symbol net() {
        Symbol x = Symbol.variable("data");
        x = Symbol.fullyConnected("fc_0", x, 2);
        x = Symbol.activation("act_0", x, "sigmoid");
        x = Symbol.fullyConnected("fc_1", x, 2);
        x = Symbol.activation("act_1", x, "sigmoid");
        return Symbol.create("LinearRegressionOutput", "softmax", Map.of("grad_scale", "2"), Map.of("data", x));
    }

    /** Binds like Module.bind(for_training=True): data and label without gradient, parameters "write". */
    static Executor bind(Symbol net, long batch, boolean dataGrad) {
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            boolean input = a.equals("data") || a.equals("softmax_label");
            reqs.put(a, input && !(dataGrad && a.equals("data")) ? GradReq.NULL : GradReq.WRITE);
        }
        Executor ex = Executor.simpleBind(net, Context.cpu(), Map.of("data", new long[] {batch, 2}, "softmax_label", new long[] {batch, 2}),
                Map.of(), reqs, new Executor.Options());
        // test_monitor's parameters and batch
        ex.argDict().get("fc_0_weight").set(new float[] {.15f, .20f, .25f, .30f});
        ex.argDict().get("fc_0_bias").set(new float[] {.35f, .35f});
        ex.argDict().get("fc_1_weight").set(new float[] {.40f, .45f, .50f, .55f});
        ex.argDict().get("fc_1_bias").set(new float[] {.60f, .60f});
        float[] data = new float[(int) batch * 2];
        float[] label = new float[(int) batch * 2];
        for (int i = 0; i < batch; i++) {
            data[2 * i] = .05f * (i + 1);
            data[2 * i + 1] = .10f / (i + 1);
            label[2 * i] = .01f;
            label[2 * i + 1] = .99f;
        }
        ex.argDict().get("data").set(data);
        ex.argDict().get("softmax_label").set(label);
        return ex;
    }

    /** test_monitor's statistic: mean absolute value. */
    static NDArray meanAbs(NDArray x) {
        try (NDArray a = x.abs(); NDArray s = a.sum()) {
            return s.div(x.size());
        }
    }

    static List<String> names(List<Monitor.Stat> res) {
        List<String> n = new ArrayList<>();
        res.forEach(s -> n.add(s.name()));
        return n;
    }

    @Test
    void mxnetTestMonitor() {
        try (Executor ex = bind(net(), 1, false)) {
            Monitor mon = new Monitor(1, MonitorTest::meanAbs, ".*", true, false);
            mon.install(ex);
            mon.tic();
            ex.forward(true);
            ex.backward();
            List<Monitor.Stat> res = mon.toc();
            assertEquals(21, res.size());
            String[] keys = {"act_0", "act_1", "data", "fc_0", "fc_1", "softmax"};
            int[] counts = new int[keys.length];
            for (Monitor.Stat s : res) {
                for (int i = 0; i < keys.length; i++) {
                    if (s.name().startsWith(keys[i])) {
                        counts[i]++;
                        break;
                    }
                }
                assertEquals(1, s.step());
                assertTrue(s.text().endsWith("\t"), s.text());
            }
            assertArrayEquals(new int[] {2, 2, 1, 6, 6, 4}, counts);
            assertEquals(List.of("act_0_backward_output", "act_0_output", "act_1_backward_output", "act_1_output", "data",
                    "fc_0_backward_output0", "fc_0_backward_output1", "fc_0_backward_output2", "fc_0_bias", "fc_0_output", "fc_0_weight",
                    "fc_1_backward_output0", "fc_1_backward_output1", "fc_1_backward_output2", "fc_1_bias", "fc_1_output", "fc_1_weight",
                    "softmax_backward_output0", "softmax_backward_output1", "softmax_label", "softmax_output"), names(res));
            // toc deactivates; a second toc has nothing
            assertTrue(mon.toc().isEmpty());
        }
    }

    /** test_module.py::test_monitor literally: Module, NDArrayIter, install_monitor, forward_backward. */
    @Test
    void mxnetTestMonitorThroughModule() {
        try (NDScope scope = NDScope.open();
                dev.kiln.io.NDArrayIter it = dev.kiln.io.NDArrayIter.builder().setData(new float[] {0.05f, .10f}, 1, 2)
                        .optLabel(new float[] {.01f, 0.99f}, 1, 2).setBatchSize(1).build();
                Module mod = Module.builder(net()).context(Context.cpu()).build()) {
            Monitor mon = new Monitor(1, MonitorTest::meanAbs, ".*", true, false);
            mod.bind(it.provideData(), it.provideLabel(), true, false, false, null, "write");
            mod.installMonitor(mon);
            Map<String, NDArray> argParams = new LinkedHashMap<>();
            argParams.put("fc_0_weight", NDArray.create(new float[] {.15f, .20f, .25f, .30f}, 2, 2));
            argParams.put("fc_0_bias", NDArray.create(new float[] {.35f, .35f}, 2));
            argParams.put("fc_1_weight", NDArray.create(new float[] {.40f, .45f, .50f, .55f}, 2, 2));
            argParams.put("fc_1_bias", NDArray.create(new float[] {.60f, .60f}, 2));
            mod.initParams(null, argParams, null, false, false, false);
            try (dev.kiln.io.DataBatch batch = it.next()) {
                mon.tic();
                mod.forwardBackward(batch);
                List<Monitor.Stat> res = mon.toc();
                assertEquals(21, res.size());
                String[] keys = {"act_0", "act_1", "data", "fc_0", "fc_1", "softmax"};
                int[] counts = new int[keys.length];
                for (Monitor.Stat st : res) {
                    for (int i = 0; i < keys.length; i++) {
                        if (st.name().startsWith(keys[i])) {
                            counts[i]++;
                            break;
                        }
                    }
                }
                assertArrayEquals(new int[] {2, 2, 1, 6, 6, 4}, counts);
            }
        }
    }

    static double rmsOf(float[] v) {
        double s = 0;
        for (float f : v) {
            s += (double) f * f;
        }
        return Math.sqrt(s / v.length);
    }

    /** Every statistic equals the RMS of the same tensor obtained without the monitor. */
    @Test
    void defaultStatisticIsTheRmsOfEachTensor() {
        Symbol net = net();
        long batch = 3;
        Map<String, Double> expected = new LinkedHashMap<>();
        // forward values: the internals of a plain, non-monitored executor
        Symbol internals = net.getInternals();
        try (Executor plain = bind(net, batch, true)) {
            Map<String, NDArray> args = new LinkedHashMap<>(plain.argDict());
            try (Executor in = Executor.bind(internals, Context.cpu(), args, Map.of(), Map.of(), Map.of(), null)) {
                in.forward(true);
                List<String> outs = internals.listOutputs();
                for (int i = 0; i < outs.size(); i++) {
                    expected.put(outs.get(i), rmsOf(in.outputs().get(i).toFloatArray()));
                }
            }
            plain.forward(true).backward();
            // gradients of the parameters and of the data (bound with a data gradient here)
            expected.put("fc_0_backward_output0", rmsOf(plain.gradDict().get("data").toFloatArray()));
            expected.put("fc_0_backward_output1", rmsOf(plain.gradDict().get("fc_0_weight").toFloatArray()));
            expected.put("fc_0_backward_output2", rmsOf(plain.gradDict().get("fc_0_bias").toFloatArray()));
            expected.put("fc_1_backward_output1", rmsOf(plain.gradDict().get("fc_1_weight").toFloatArray()));
            expected.put("fc_1_backward_output2", rmsOf(plain.gradDict().get("fc_1_bias").toFloatArray()));
            // d loss / d label is zero in Kiln (MXNet leaves it unwritten)
            expected.put("softmax_backward_output1", 0.0);
        }
        try (Executor ex = bind(net, batch, false)) {
            Monitor mon = new Monitor(1);
            mon.install(ex);
            mon.tic();
            ex.forwardBackward();
            List<Monitor.Stat> res = mon.toc();
            assertEquals(21, res.size());
            int checked = 0;
            for (Monitor.Stat s : res) {
                Double want = expected.get(s.name());
                if (want == null) {
                    continue;
                }
                double got = Double.parseDouble(s.text().trim());
                assertEquals(want, got, 1e-6 * Math.max(1, want), s.name());
                checked++;
            }
            // 5 forward outputs and 6 arguments from the internals, 6 gradients
            assertEquals(17, checked, "statistics checked: " + names(res));
        }
    }

    @Test
    void intervalPatternAndOrder() {
        try (Executor ex = bind(net(), 2, false)) {
            Monitor mon = new Monitor(2, null, "fc_1|act", false, false);
            mon.install(ex);
            assertFalse(ex.isMonitoring(), "installing does not switch snapshots on before a monitored batch");
            List<List<Monitor.Stat>> batches = new ArrayList<>();
            for (int b = 0; b < 4; b++) {
                mon.tic();
                ex.forwardBackward();
                batches.add(mon.toc());
                // interval 2: snapshots only during batches 1 and 3
                assertEquals(false, ex.isMonitoring(), "after toc of batch " + (b + 1));
                assertEquals(0, ex.memoryReport().monitorBytes());
            }
            assertTrue(batches.get(1).isEmpty());
            assertTrue(batches.get(3).isEmpty());
            assertEquals(1, batches.get(0).get(0).step());
            assertEquals(3, batches.get(2).get(0).step());
            // re.match: anchored at the start ("fc_1" does not match "xfc_1"; "act" matches only act_*),
            // unsorted: execution order, then the arguments in list_arguments order
            assertEquals(List.of("act_0_output", "fc_1_output", "act_1_output", "act_1_backward_output", "fc_1_backward_output0",
                    "fc_1_backward_output1", "fc_1_backward_output2", "act_0_backward_output", "fc_1_weight", "fc_1_bias"),
                    names(batches.get(0)));
            assertEquals(names(batches.get(0)), names(batches.get(2)));

            Monitor none = new Monitor(1, null, "weight", false, false); // re.match, not re.search
            none.install(ex);
            none.tic();
            ex.forwardBackward();
            assertTrue(none.toc().isEmpty());
        }
    }

    @Test
    void intervalOneKeepsSnapshotsBetweenBatches() {
        try (Executor ex = bind(net(), 1, false)) {
            Monitor mon = new Monitor(1);
            mon.install(ex);
            for (int b = 1; b <= 3; b++) {
                mon.tic();
                assertTrue(ex.isMonitoring());
                ex.forwardBackward();
                List<Monitor.Stat> res = mon.toc();
                assertEquals(21, res.size());
                assertEquals(b, res.get(0).step());
            }
            assertTrue(ex.isMonitoring(), "the next batch is monitored too");
            assertTrue(ex.memoryReport().monitorBytes() > 0);
            mon.tic();
            ex.forwardBackward();
            mon.tocPrint(); // logs through SLF4J
            assertFalse(mon.isActivated());
            assertEquals(4, mon.step());
        }
    }

    @Test
    void monitorAllNamesInputsAsMxnet() {
        try (Executor ex = bind(net(), 1, false)) {
            Monitor mon = new Monitor(1, null, ".*", false, true);
            mon.install(ex);
            mon.tic();
            ex.forwardBackward();
            List<String> got = names(mon.toc());
            // MXNet 1.9.1's callback sequence (recorded by MonitorOracleTest), then the arguments.
            // Kiln's sigmoid backward reads (ograd, output); MXNet's MKLDNN/cuDNN builds also pass
            // the input, which adds act_*_backward_input2 there (plain CPU MXNet has 2 inputs too).
            List<String> want = List.of("data", "fc_0_data", "fc_0_weight", "fc_0_weight", "fc_0_bias", "fc_0_bias", "fc_0_output",
                    "act_0_input0", "act_0_output", "fc_1_data", "fc_1_weight", "fc_1_weight", "fc_1_bias", "fc_1_bias", "fc_1_output",
                    "act_1_input0", "act_1_output", "softmax_data", "softmax_label", "softmax_label", "softmax_output",
                    "softmax_label", "softmax_backward_input0", "softmax_backward_input1", "softmax_backward_output0",
                    "softmax_backward_output1", "act_1_backward_input0", "act_1_backward_input1", "act_1_backward_output",
                    "fc_1_backward_input0", "fc_1_backward_input1", "fc_1_weight", "fc_1_backward_input2", "fc_1_backward_output0",
                    "fc_1_backward_output1", "fc_1_backward_output2", "act_0_backward_input0", "act_0_backward_input1",
                    "act_0_backward_output", "fc_0_backward_input0", "data", "fc_0_backward_input1", "fc_0_weight",
                    "fc_0_backward_input2", "fc_0_backward_output0", "fc_0_backward_output1", "fc_0_backward_output2",
                    "data", "fc_0_weight", "fc_0_bias", "fc_1_weight", "fc_1_bias", "softmax_label");
            assertEquals(want, got);
        }
    }

    /** An input snapshot holds the value before the op ran, even when the op overwrites it in place. */
    @Test
    void inputSnapshotsPrecedeInPlaceOverwrites() {
        Symbol x = Symbol.variable("data");
        Symbol fc = Symbol.fullyConnected("fc", x, 2);
        Symbol act = Symbol.activation("act", fc, "sigmoid"); // in place over fc_output
        Symbol net = Symbol.create("MakeLoss", "loss", Map.of(), Map.of("data", act));
        try (Executor ex = Executor.simpleBind(net, Context.cpu(), Map.of("data", new long[] {1, 2}), GradReq.WRITE)) {
            ex.argDict().get("data").set(new float[] {1, 2});
            ex.argDict().get("fc_weight").set(new float[] {1, 0, 0, 1});
            ex.setMonitor(true, true).forward(true);
            Map<String, float[]> v = new LinkedHashMap<>();
            for (Map.Entry<String, NDArray> e : ex.monitorEntries()) {
                v.put(e.getKey(), e.getValue().toFloatArray());
            }
            assertArrayEquals(new float[] {1, 2}, v.get("act_input0"));
            assertArrayEquals(new float[] {1, 2}, v.get("fc_output"));
            assertArrayEquals(new float[] {sigmoid(1), sigmoid(2)}, v.get("act_output"), 1e-6f);
            assertEquals(ex.memoryReport().entry("act_output").get("storage"), ex.memoryReport().entry("fc_output").get("storage"),
                    "the plan runs sigmoid in place (the point of this test)");
        }
    }

    static float sigmoid(float x) {
        return (float) (1 / (1 + Math.exp(-x)));
    }

    @Test
    void entriesFollowTheLastForwardAndBackward() {
        try (Executor ex = bind(net(), 1, false)) {
            assertTrue(ex.monitorEntries().isEmpty(), "monitor off: no entries");
            long before = Engine.memory(Context.cpu()).currentBytes();
            ex.forwardBackward();
            assertEquals(before, Engine.memory(Context.cpu()).currentBytes(), "monitor off: no memory");
            assertEquals(0, ex.memoryReport().monitorBytes());

            ex.setMonitor(true, false);
            long arena = ex.memoryReport().monitorBytes();
            assertTrue(arena > 0);
            assertEquals(before + arena, Engine.memory(Context.cpu()).currentBytes(), "one snapshot arena, counted");
            assertTrue(ex.monitorEntries().isEmpty(), "no pass yet");
            ex.forward(true);
            List<Map.Entry<String, NDArray>> fwd = ex.monitorEntries();
            assertEquals(List.of("fc_0_output", "act_0_output", "fc_1_output", "act_1_output", "softmax_output"), keys(fwd));
            assertEquals(fwd, ex.monitorEntries(), "same list until the next pass");
            ex.backward();
            assertTrue(fwd.get(0).getValue().isClosed(), "views of the previous pass are closed by the next one");
            List<Map.Entry<String, NDArray>> both = ex.monitorEntries();
            assertEquals(15, both.size());
            assertEquals("softmax_backward_output0", both.get(5).getKey());
            ex.forward(false);
            assertEquals(5, ex.monitorEntries().size(), "a new forward drops the old backward");
            NDArray view = ex.monitorEntries().get(0).getValue();
            ex.setMonitor(false, false);
            assertTrue(view.isClosed());
            assertTrue(ex.monitorEntries().isEmpty());
            assertEquals(before, Engine.memory(Context.cpu()).currentBytes(), "monitor off frees the snapshots");
        }
    }

    static List<String> keys(List<Map.Entry<String, NDArray>> l) {
        List<String> k = new ArrayList<>();
        l.forEach(e -> k.add(e.getKey()));
        return k;
    }

    /** Outputs the plan does not compute (the unused data gradient) are computed while monitoring. */
    @Test
    void unreadOutputsAreComputedWhileMonitoring() {
        try (Executor ex = bind(net(), 2, false); Executor ref = bind(net(), 2, true)) {
            ex.setMonitor(true, false).forwardBackward();
            ref.forwardBackward();
            NDArray dataGrad = null;
            for (Map.Entry<String, NDArray> e : ex.monitorEntries()) {
                if (e.getKey().equals("fc_0_backward_output0")) {
                    dataGrad = e.getValue();
                }
            }
            assertArrayEquals(ref.gradDict().get("data").toFloatArray(), dataGrad.toFloatArray(), 1e-7f);
            // and the plan's outputs are untouched when monitoring stops
            ex.setMonitor(false, false).forwardBackward();
            assertArrayEquals(ref.outputs().get(0).toFloatArray(), ex.outputs().get(0).toFloatArray());
            assertArrayEquals(ref.gradDict().get("fc_0_weight").toFloatArray(), ex.gradDict().get("fc_0_weight").toFloatArray());
        }
    }

    @Test
    void closeFreesSnapshotsAndClosedExecutorsThrow() {
        Executor ex = bind(net(), 1, false);
        Monitor mon = new Monitor(1);
        mon.install(ex);
        mon.tic();
        ex.forwardBackward();
        NDArray view = ex.monitorEntries().get(0).getValue();
        ex.close(); // NoLeaks checks that the snapshot arena went with it
        assertTrue(view.isClosed());
        assertThrows(IllegalStateException.class, () -> ex.setMonitor(true, false));
        assertThrows(IllegalStateException.class, ex::monitorEntries);
        assertThrows(IllegalStateException.class, () -> mon.install(ex));
        // a closed executor is dropped by the monitor: only nothing is left to report
        assertTrue(mon.toc().isEmpty());
        assertThrows(IllegalArgumentException.class, () -> new Monitor(0));
    }

    @Test
    void severalExecutorsAndCustomStatistics() {
        try (Executor a = bind(net(), 1, false); Executor b = bind(net(), 2, false)) {
            Function<NDArray, NDArray> max = x -> x.max();
            Monitor mon = new Monitor(1, max, "fc_0_output|data", false, false);
            mon.install(a);
            mon.install(b);
            mon.install(a); // once only
            mon.tic();
            a.forwardBackward();
            b.forwardBackward();
            List<Monitor.Stat> res = mon.toc();
            assertEquals(List.of("fc_0_output", "fc_0_output", "data", "data"), names(res));
            assertEquals("0.1\t", res.get(3).text(), "max of b's data [.05, .1, .1, .05]");
            // a statistic that is not a scalar prints as NumPy prints the array
            Monitor arr = new Monitor(1, NDArray::copy, "fc_0_weight", false, false);
            arr.install(a);
            arr.tic();
            assertEquals("[[0.15 0.2 ]\n [0.25 0.3 ]]\t", arr.toc().get(0).text());
            // a statistic returning its input is not closed by the monitor
            Monitor same = new Monitor(1, x -> x, "fc_0_bias", false, false);
            same.install(a);
            same.tic();
            assertEquals("[0.35 0.35]\t", same.toc().get(0).text());
            assertFalse(a.argDict().get("fc_0_bias").isClosed());
        }
    }

    @Test
    void statisticTemporariesAreClosedInsideAUserScope() {
        try (NDScope scope = NDScope.open(); Executor ex = bind(net(), 1, false)) {
            int before = scope.size();
            Monitor mon = new Monitor(1, x -> x.mul(2).sum(), ".*", true, true); // leaks x*2 on purpose
            mon.install(ex);
            mon.tic();
            ex.forwardBackward();
            assertEquals(53, mon.toc().size());
            assertEquals(before, scope.size(), "the monitor closed what the statistic created");
        }
    }

    @Test
    void numpyText() {
        assertEquals("0.1", Monitor.NumpyText.scalar(0.1f, DType.FLOAT32));
        assertEquals("0.35", Monitor.NumpyText.scalar(0.35f, DType.FLOAT32));
        assertEquals("1.0", Monitor.NumpyText.scalar(1f, DType.FLOAT32));
        assertEquals("100.0", Monitor.NumpyText.scalar(100f, DType.FLOAT32));
        assertEquals("0.33333334", Monitor.NumpyText.scalar(1f / 3, DType.FLOAT32));
        assertEquals("0.3333333333333333", Monitor.NumpyText.scalar(1.0 / 3, DType.FLOAT64));
        assertEquals("1e-05", Monitor.NumpyText.scalar(1e-5f, DType.FLOAT32));
        assertEquals("1.5e-05", Monitor.NumpyText.scalar(1.5e-5f, DType.FLOAT32));
        // NumPy compares the float32 value itself (9.99999974e-05 < 1e-4)
        assertEquals("1e-04", Monitor.NumpyText.scalar(1e-4f, DType.FLOAT32));
        assertEquals("0.0001", Monitor.NumpyText.scalar(1e-4, DType.FLOAT64));
        assertEquals("1e+16", Monitor.NumpyText.scalar(1e16f, DType.FLOAT32));
        assertEquals("-2.5", Monitor.NumpyText.scalar(-2.5f, DType.FLOAT32));
        assertEquals("0.0", Monitor.NumpyText.scalar(0f, DType.FLOAT32));
        assertEquals("nan", Monitor.NumpyText.scalar(Float.NaN, DType.FLOAT32));
        assertEquals("-inf", Monitor.NumpyText.scalar(Double.NEGATIVE_INFINITY, DType.FLOAT32));
        assertEquals("7", Monitor.NumpyText.scalar(7, DType.INT32));

        assertEquals("[0.5  0.25]", Monitor.NumpyText.array(new double[] {0.5, 0.25}, new long[] {2}, DType.FLOAT32));
        assertEquals("[1. 2.]", Monitor.NumpyText.array(new double[] {1, 2}, new long[] {2}, DType.FLOAT32));
        assertEquals("[-1.5  2. ]", Monitor.NumpyText.array(new double[] {-1.5, 2}, new long[] {2}, DType.FLOAT32));
        assertEquals("[[1. 2.]\n [3. 4.]]", Monitor.NumpyText.array(new double[] {1, 2, 3, 4}, new long[] {2, 2}, DType.FLOAT32));
        assertEquals("[1.e-05 1.e+00]", Monitor.NumpyText.array(new double[] {1e-5f, 1}, new long[] {2}, DType.FLOAT32));
        assertEquals("[1.0e-05 1.5e-05]", Monitor.NumpyText.array(new double[] {1e-5f, 1.5e-5f}, new long[] {2}, DType.FLOAT32));
        assertEquals("[0.25  nan]", Monitor.NumpyText.array(new double[] {0.25, Double.NaN}, new long[] {2}, DType.FLOAT32));
        assertEquals("0.5", Monitor.NumpyText.array(new double[] {0.5}, new long[] {}, DType.FLOAT32));
        double[] many = new double[2000];
        for (int i = 0; i < many.length; i++) {
            many[i] = 1000 + i;
        }
        assertEquals("[1000. 1001. 1002. ... 2997. 2998. 2999.]", Monitor.NumpyText.array(many, new long[] {2000}, DType.FLOAT32));
        for (int i = 0; i < many.length; i++) {
            many[i] = i;
        }
        assertEquals("[0.000e+00 1.000e+00 2.000e+00 ... 1.997e+03 1.998e+03 1.999e+03]",
                Monitor.NumpyText.array(many, new long[] {2000}, DType.FLOAT32));
        double[] row = new double[30];
        for (int i = 0; i < row.length; i++) {
            row[i] = i + 0.5;
        }
        assertEquals("[ 0.5  1.5  2.5  3.5  4.5  5.5  6.5  7.5  8.5  9.5 10.5 11.5 12.5 13.5\n"
                + " 14.5 15.5 16.5 17.5 18.5 19.5 20.5 21.5 22.5 23.5 24.5 25.5 26.5 27.5\n"
                + " 28.5 29.5]", Monitor.NumpyText.array(row, new long[] {30}, DType.FLOAT32));
    }
}
