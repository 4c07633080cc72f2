package dev.kiln.reliability;

import dev.kiln.engine.KilnException;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.init.InitDesc;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.DataDesc;
import dev.kiln.module.Module;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The thread model (docs/module-api.md, "Threads"): executors and modules are not thread-safe;
 * use one executor (one {@link Module}) per thread. Executors bound with {@link Executor#bind} to
 * the same read-only parameter arrays run forward concurrently, each on its own thread, and so do
 * modules of their own given the same parameters; the shared parameters must not be updated while
 * they do. A module bound with {@code sharedModule} also shares the other module's memory pool
 * (MXNet's shared_exec): its calls are rejected while another thread runs a module of that pool. Calling into one executor from two threads at
 * once is rejected: the second call fails with a {@link KilnException} saying the executor is in
 * use by another thread (and closing an executor that another thread is running fails with
 * "cannot free an executor while another thread is using it"), instead of racing on the
 * executor's memory.
 *
 * <p>Stress: 4 threads, each with its own module holding one module's parameters, predict 8
 * different batches 20 times each concurrently; every result equals the sequential prediction
 * bit for bit and the base module's parameters are unchanged.
 */
@ExtendWith(NoLeaks.class)
class ThreadingStressTest {
    static final int BATCH = 16;
    static final int FEAT = 64;

    static Symbol net() {
        Symbol x = Symbol.variable("data");
        x = Symbol.activation("relu1", Symbol.fullyConnected("fc1", x, 256), "relu");
        x = Symbol.activation("relu2", Symbol.fullyConnected("fc2", x, 128), "tanh");
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc3", x, 10));
    }

    static float[] input(int i) {
        return input(i, BATCH * FEAT);
    }

    static float[] input(int i, int n) {
        SplittableRandom r = new SplittableRandom(1000 + i);
        float[] x = new float[n];
        for (int j = 0; j < x.length; j++) {
            x[j] = (float) (r.nextDouble() * 2 - 1);
        }
        return x;
    }

    /** A task of {@link #together}. */
    interface Task {
        void run() throws Exception;
    }

    /**
     * Runs the tasks at once, one thread each (released together by a barrier), waits for all and
     * fails with the first error, naming {@code what}.
     */
    static void together(String what, List<Task> tasks) throws InterruptedException {
        ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
        CyclicBarrier start = new CyclicBarrier(tasks.size());
        List<Thread> ts = new ArrayList<>();
        for (Task task : tasks) {
            ts.add(new Thread(() -> {
                try {
                    start.await(60, TimeUnit.SECONDS);
                    task.run();
                } catch (Throwable e) {
                    errors.add(e);
                }
            }));
        }
        ts.forEach(Thread::start);
        for (Thread t : ts) {
            t.join(600_000);
            if (t.isAlive()) {
                throw new AssertionError(what + " did not finish in 10 minutes");
            }
        }
        if (!errors.isEmpty()) {
            throw new AssertionError(what + " failed: " + errors.peek(), errors.peek());
        }
    }

    @Test
    void concurrentPredictOnSharedReadOnlyParameters() throws Exception {
        final int threads = 4;
        final int inputs = 8;
        final int rounds = 20;
        List<DataDesc> data = List.of(new DataDesc("data", new long[] {BATCH, FEAT}));
        List<DataDesc> label = null;  // inferred from the data, also by the shared binds of the second test
        try (Module base = new Module(net())) {
            base.bind(data, label, false, false, false, null, "write");
            Initializer.seed(3);
            base.initParams(new Xavier(), null, null, false, false, false);
            List<float[]> expected = new ArrayList<>();
            for (int i = 0; i < inputs; i++) {
                try (NDArray x = NDArray.create(input(i), BATCH, FEAT); NDArray y = base.predict(x)) {
                    expected.add(y.toFloatArray());
                }
            }
            Map<String, NDArray> params = base.getParams().get(0);
            Map<String, float[]> before = new java.util.TreeMap<>();
            params.forEach((k, v) -> before.put(k, v.toFloatArray()));

            AtomicInteger checked = new AtomicInteger();
            List<Task> tasks = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                final int tid = t;
                tasks.add(() -> {
                    try (Module m = new Module(net())) {
                        // a module of its own (own memory), with a copy of the base module's parameters
                        m.bind(data, label, false, false, false, null, "write");
                        m.setParams(params, Map.of(), false, false, false);
                        for (int round = 0; round < rounds; round++) {
                            int i = (round + tid) % inputs;
                            try (NDArray x = NDArray.create(input(i), BATCH, FEAT); NDArray y = m.predict(x)) {
                                assertArrayEquals(expected.get(i), y.toFloatArray(), "thread " + tid + " input " + i);
                                checked.incrementAndGet();
                            }
                        }
                    }
                });
            }
            together("concurrent predict", tasks);
            assertEquals(threads * rounds, checked.get());
            Map<String, NDArray> after = base.getParams().get(0);
            before.forEach((k, v) -> assertArrayEquals(v, after.get(k).toFloatArray(), "shared parameter " + k + " unchanged"));
        }
    }

    /**
     * Modules bound with {@code sharedModule} share the shared module's memory pool (as in MXNet):
     * run concurrently, each predict either gives the exact sequential result or is rejected with
     * the "memory pool" error; a result computed with another thread's intermediates never comes
     * back.
     */
    @Test
    void sharedPoolModulesAreRejectedNotCorruptedWhenRunConcurrently() throws Exception {
        final int threads = 3;
        final int rounds = 1000;
        List<DataDesc> data = List.of(new DataDesc("data", new long[] {BATCH, FEAT}));
        try (Module base = new Module(net())) {
            base.bind(data, null, false, false, false, null, "write");
            Initializer.seed(5);
            base.initParams(new Xavier(), null, null, false, false, false);
            float[] want;
            try (NDArray x = NDArray.create(input(1), BATCH, FEAT); NDArray y = base.predict(x)) {
                want = y.toFloatArray();
            }
            AtomicInteger ok = new AtomicInteger();
            AtomicInteger rejected = new AtomicInteger();
            List<Module> mods = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                Module m = new Module(net());
                m.bind(data, null, false, false, false, base, "write");  // label shape inferred, pool shared
                mods.add(m);
            }
            try {
                List<Task> tasks = new ArrayList<>();
                for (Module m : mods) {
                    tasks.add(() -> {
                        for (int r = 0; r < rounds; r++) {
                            try (NDArray x = NDArray.create(input(1), BATCH, FEAT); NDArray y = m.predict(x)) {
                                assertArrayEquals(want, y.toFloatArray());
                                ok.incrementAndGet();
                            } catch (KilnException e) {
                                if (!e.getMessage().contains("memory pool")) {
                                    throw e;
                                }
                                rejected.incrementAndGet();
                            }
                        }
                    });
                }
                together("shared-pool predict", tasks);
            } finally {
                mods.forEach(Module::close);
            }
            System.out.printf("shared-pool modules, %d threads x %d predicts: %d exact, %d rejected%n", threads, rounds,
                    ok.get(), rejected.get());
            assertEquals(threads * rounds, ok.get() + rejected.get());
            assertTrue(ok.get() > 0);
        }
    }

    @Test
    void executorsBoundToSharedArraysForwardConcurrently() throws Exception {
        final int threads = 3;
        Symbol net = net();
        try (Executor ref = Executor.simpleBind(net, Context.cpu(), Map.of("data", new long[] {BATCH, FEAT}), GradReq.NULL)) {
            Initializer.seed(9);
            for (Map.Entry<String, NDArray> e : ref.argDict().entrySet()) {
                if (e.getKey().endsWith("weight")) {
                    new Xavier().init(new InitDesc(e.getKey()), e.getValue());
                } else if (e.getKey().endsWith("bias")) {
                    e.getValue().fill(0.01);
                }
            }
            ref.argDict().get("data").set(input(0));
            float[] want = ref.forward(false).outputs().get(0).toFloatArray();
            Task forward = () -> {
                Map<String, NDArray> args = new java.util.LinkedHashMap<>(ref.argDict());
                try (NDArray x = NDArray.create(input(0), BATCH, FEAT); NDArray label = NDArray.zeros(BATCH)) {
                    args.put("data", x);
                    args.put("softmax_label", label);
                    try (Executor ex = Executor.bind(net, Context.cpu(), args, null, null, null, null)) {
                        for (int i = 0; i < 30; i++) {
                            assertArrayEquals(want, ex.forward(false).outputs().get(0).toFloatArray());
                        }
                    }
                }
            };
            together("concurrent forward", java.util.Collections.nCopies(threads, forward));
        }
    }

    /**
     * Reading an executor's outputs holds its memory pool against runs, not against other reads:
     * 4 threads copying out, reading and computing on one output at once are never rejected.
     */
    @Test
    void concurrentReadsOfOneExecutorsOutputsAreNotRejected() throws Exception {
        try (Executor ex = Executor.simpleBind(net(), Context.cpu(), Map.of("data", new long[] {BATCH, FEAT}), GradReq.NULL)) {
            ex.argDict().get("data").set(input(2));
            ex.argDict().get("fc1_weight").fill(0.01);
            NDArray out = ex.forward(false).outputs().get(0);
            float[] want = out.toFloatArray();
            Task read = () -> {
                for (int i = 0; i < 300; i++) {
                    assertArrayEquals(want, out.toFloatArray());
                    try (NDArray c = out.copy(); NDArray twice = out.mul(2.0)) {
                        assertArrayEquals(want, c.toFloatArray());
                        assertEquals(2 * want[3], twice.toFloatArray()[3]);
                    }
                }
            };
            together("concurrent reads", java.util.Collections.nCopies(4, read));
        }
    }

    /**
     * An executor whose input is another executor's output (bound as its data) holds that
     * executor's pool while it runs: run from two threads, the first recomputing its output and the
     * second reading it, each call either computes exactly or is rejected.
     */
    @Test
    void anExecutorReadingAnotherExecutorsOutputIsRejectedNotCorrupted() throws Exception {
        Symbol first = Symbol.activation("r", Symbol.fullyConnected("fc1", Symbol.variable("data"), 256), "relu");
        Symbol second = Symbol.fullyConnected("fc2", Symbol.variable("data"), 10);
        try (Executor a = Executor.simpleBind(first, Context.cpu(), Map.of("data", new long[] {BATCH, FEAT}), GradReq.NULL)) {
            a.argDict().get("data").set(input(3));
            a.argDict().get("fc1_weight").set(input(4, 256 * FEAT));
            a.argDict().get("fc1_bias").fill(-0.02);
            NDArray hidden = a.forward(false).outputs().get(0);
            Map<String, NDArray> args = new java.util.LinkedHashMap<>();
            args.put("data", hidden);
            try (NDArray w = NDArray.create(input(5, 10 * 256), 10, 256); NDArray b = NDArray.zeros(10)) {
                args.put("fc2_weight", w);
                args.put("fc2_bias", b);
                try (Executor c = Executor.bind(second, Context.cpu(), args, null, null, null, null)) {
                    float[] want = c.forward(false).outputs().get(0).toFloatArray();
                    AtomicInteger exact = new AtomicInteger(), rejected = new AtomicInteger();
                    Task recompute = () -> {
                        for (int i = 0; i < 1000; i++) {
                            try {
                                a.forward(false);
                            } catch (KilnException e) {
                                if (!e.getMessage().contains("reading, copying or computing on")) {
                                    throw e;
                                }
                                rejected.incrementAndGet();
                            }
                        }
                    };
                    Task read = () -> {
                        for (int i = 0; i < 1000; i++) {
                            try {
                                assertArrayEquals(want, c.forward(false).outputs().get(0).toFloatArray());
                                exact.incrementAndGet();
                            } catch (KilnException e) {
                                if (!e.getMessage().contains("memory pool")) {
                                    throw e;
                                }
                                rejected.incrementAndGet();
                            }
                        }
                    };
                    together("chained executors", List.of(recompute, read));
                    System.out.printf("chained executors, 2 threads x 1000 runs: %d exact, %d rejected%n", exact.get(), rejected.get());
                    // alone again, the chain computes exactly
                    a.forward(false);
                    assertArrayEquals(want, c.forward(false).outputs().get(0).toFloatArray());
                }
            }
        }
    }

    @Test
    void oneExecutorFromTwoThreadsIsRejectedNotCorrupted() throws Exception {
        Symbol net = Symbol.fullyConnected("fc2", Symbol.activation("r", Symbol.fullyConnected("fc1", Symbol.variable("data"), 512), "relu"), 256);
        try (Executor ex = Executor.simpleBind(net, Context.cpu(), Map.of("data", new long[] {256, 512}), GradReq.NULL)) {
            Initializer.seed(4);
            for (Map.Entry<String, NDArray> e : ex.argDict().entrySet()) {
                new dev.kiln.init.Uniform(0.1).init(new InitDesc(e.getKey() + "_weight"), e.getValue());
            }
            float[] want = ex.forward(false).outputs().get(0).toFloatArray();
            final int rounds = 40;
            CyclicBarrier barrier = new CyclicBarrier(2);
            AtomicInteger rejected = new AtomicInteger();
            ConcurrentLinkedQueue<Throwable> unexpected = new ConcurrentLinkedQueue<>();
            List<Thread> ts = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                ts.add(new Thread(() -> {
                    for (int i = 0; i < rounds; i++) {
                        try {
                            barrier.await(60, TimeUnit.SECONDS);
                            ex.forward(false);
                        } catch (KilnException e) {
                            if (e.getMessage().contains("in use by another thread")) {
                                rejected.incrementAndGet();
                            } else {
                                unexpected.add(e);
                            }
                        } catch (Throwable e) {
                            unexpected.add(e);
                        }
                    }
                }));
            }
            ts.forEach(Thread::start);
            for (Thread t : ts) {
                t.join(600_000);
            }
            System.out.printf("ThreadingStressTest: one executor, two threads, %d barrier-aligned rounds: %d calls rejected as in use%n",
                    rounds, rejected.get());
            assertTrue(unexpected.isEmpty(), "only 'in use by another thread' failures: " + unexpected);
            assertTrue(rejected.get() > 0, "simultaneous calls into one executor are detected");
            assertArrayEquals(want, ex.forward(false).outputs().get(0).toFloatArray(), "the executor still computes the same result");
        }
    }
}
