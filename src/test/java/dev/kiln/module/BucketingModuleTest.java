package dev.kiln.module;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.executor.MemoryReport;
import dev.kiln.init.Xavier;
import dev.kiln.io.BucketSentenceIter;
import dev.kiln.io.DataBatch;
import dev.kiln.io.DataDesc;
import dev.kiln.metric.Perplexity;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * BucketingModule (MXNet's bucketing_module.py) and the executor memory sharing behind it
 * (spec executor-and-memory-planner.md 1.10): a character language model on tiny-shakespeare
 * lines, unrolled per bucket from FullyConnected/tanh steps whose weights are shared.
 */
@ExtendWith(NoLeaks.class)
class BucketingModuleTest {
    static final int[] BUCKETS = {8, 16, 24, 32, 40};
    static final int HIDDEN = 48;

    /** Lower-cased lines of tiny-shakespeare coded over their alphabet (index 0 unused: a real char id >= 0 anyway). */
    static final class Corpus {
        final List<int[]> lines = new ArrayList<>();
        final int vocab;

        Corpus(int maxLines) throws IOException {
            Path f = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "tiny-shakespeare", "input.txt");
            List<String> all = Files.readAllLines(f, StandardCharsets.UTF_8);
            Map<Character, Integer> ids = new HashMap<>();
            for (String raw : all) {
                String s = raw.toLowerCase(Locale.ROOT).strip();
                if (s.isEmpty()) {
                    continue;
                }
                int[] code = new int[s.length()];
                for (int i = 0; i < code.length; i++) {
                    code[i] = ids.computeIfAbsent(s.charAt(i), c -> ids.size());
                }
                lines.add(code);
                if (lines.size() == maxLines) {
                    break;
                }
            }
            vocab = ids.size();
        }

        int[][] sentences(int from, int to) {
            return lines.subList(from, to).toArray(new int[0][]);
        }
    }

    /**
     * The bucket's unrolled network: data (N, T) -> one_hot -> T steps of
     * {@code h_t = tanh(i2h(x_t) + h2h(h_{t-1}))}, {@code y_t = pred(h_t)}; the outputs are
     * concatenated to (N, T*V), reshaped to (N*T, V) and fed to SoftmaxOutput with the (N*T)
     * labels, ignoring the padding label -1. i2h, h2h and pred are the same variables in every
     * bucket.
     */
    static BucketingModule.BucketSymbol charRnn(int t, int vocab) {
        Symbol data = Symbol.variable("data");
        Symbol label = Symbol.variable("softmax_label");
        Symbol wi = Symbol.variable("i2h_weight");
        Symbol bi = Symbol.variable("i2h_bias");
        Symbol wh = Symbol.variable("h2h_weight");
        Symbol wo = Symbol.variable("pred_weight");
        Symbol bo = Symbol.variable("pred_bias");
        Symbol oh = Symbol.create("one_hot", "onehot", Map.of("depth", Integer.toString(vocab)), null, data);
        Symbol steps = Symbol.create("SliceChannel", "steps", Map.of("num_outputs", Integer.toString(t), "axis", "1",
                "squeeze_axis", "1"), null, oh);
        Symbol h = null;
        List<Symbol> outs = new ArrayList<>();
        for (int i = 0; i < t; i++) {
            Symbol x = t == 1 ? steps : steps.get(i);
            Symbol a = Symbol.fullyConnected("t" + i + "_i2h", x, wi, bi, HIDDEN);
            if (h != null) {
                Map<String, Symbol> in = new LinkedHashMap<>();
                in.put("data", h);
                in.put("weight", wh);
                a = a.plus(Symbol.create("FullyConnected", "t" + i + "_h2h", Map.of("num_hidden", Integer.toString(HIDDEN),
                        "no_bias", "True"), in));
            }
            h = Symbol.activation("t" + i + "_tanh", a, "tanh");
            outs.add(Symbol.fullyConnected("t" + i + "_pred", h, wo, bo, vocab));
        }
        Symbol cat = Symbol.create("Concat", "concat", Map.of("dim", "1"), null, outs.toArray(new Symbol[0]));
        Symbol pred = Symbol.create("Reshape", "pred", Map.of("shape", "(-1, " + vocab + ")"), null, cat);
        Symbol lab = Symbol.create("Reshape", "label_flat", Map.of("shape", "(-1,)"), null, label);
        Symbol out = Symbol.create("SoftmaxOutput", "softmax", Map.of("use_ignore", "True", "ignore_label", "-1"), null, pred, lab);
        return new BucketingModule.BucketSymbol(out, List.of("data"), List.of("softmax_label"));
    }

    private static BucketingModule charModule(int vocab) {
        return BucketingModule.builder(key -> charRnn((Integer) key, vocab), BUCKETS[BUCKETS.length - 1]).build();
    }

    private static BucketSentenceIter iter(int[][] sentences, long seed) {
        return new BucketSentenceIter(sentences, 32, BUCKETS, -1, "data", "softmax_label", DType.FLOAT32, "NT", seed);
    }

    private static double perplexity(BaseModule mod, BucketSentenceIter it) {
        return mod.score(it, new Perplexity(-1)).get(0).getValue();
    }

    /** Trains on real text: the held-out perplexity drops well below the untrained one (about the vocabulary size). */
    @Test
    void learnsCharacterLanguageModelOnShakespeare() throws IOException {
        Corpus c = new Corpus(3400);
        try (BucketSentenceIter train = iter(c.sentences(0, 3000), 1); BucketSentenceIter valid = iter(c.sentences(3000, 3400), 2);
             BucketingModule mod = charModule(c.vocab)) {
            assertEquals(40, train.defaultBucketKey());
            mod.bind(train.provideData(), train.provideLabel(), true, false, false, null, "write");
            mod.initParams(new Xavier());
            double before = perplexity(mod, valid);
            List<Double> trainPpl = new ArrayList<>();
            mod.fit(train, new BaseModule.FitArgs().numEpoch(3).evalMetric(new Perplexity(-1)).optimizer("adam")
                    .optimizerParams(Map.of("learning_rate", 0.01)).epochSummary((e, tr, va) -> trainPpl.add(tr.get(0).getValue())));
            double after = perplexity(mod, valid);
            System.out.printf(Locale.ROOT, "char-rnn vocab %d: validation perplexity %.2f -> %.2f, train %s, buckets %s%n", c.vocab,
                    before, after, trainPpl, mod.bucketKeys());
            assertTrue(before > 0.7 * c.vocab, "untrained perplexity " + before + " should be near the vocabulary size " + c.vocab);
            assertTrue(after < 0.5 * before, "validation perplexity " + before + " -> " + after);
            assertTrue(trainPpl.get(2) < trainPpl.get(0), "training perplexity decreases: " + trainPpl);
            assertEquals(BUCKETS.length, mod.bucketKeys().size(), "every bucket got a module: " + mod.bucketKeys());
            // predict through BaseModule: one (N*T, V) block per batch, concatenated
            long rows = 0;
            valid.reset();
            while (valid.hasNext()) {
                try (DataBatch b = valid.next()) {
                    rows += b.data().get(0).size();
                }
            }
            List<NDArray> pred = mod.predict(valid);
            try {
                assertEquals(1, pred.size());
                assertArrayEquals(new long[] {rows, c.vocab}, pred.get(0).shape().dims());
            } finally {
                pred.forEach(NDArray::close);
            }
        }
    }

    /** Every bucket trains the default bucket's arrays: same parameter, gradient and parameter-dict objects. */
    @Test
    void bucketsShareParametersGradientsAndOptimizer() throws IOException {
        Corpus c = new Corpus(1200);
        try (BucketSentenceIter train = iter(c.sentences(0, 1200), 3); BucketingModule mod = charModule(c.vocab)) {
            mod.bind(train.provideData(), train.provideLabel(), true, false, false, null, "write");
            mod.initParams(new Xavier());
            mod.initOptimizer("sgd", Map.of("learning_rate", 0.1, "momentum", 0.9));
            while (train.hasNext()) {
                try (DataBatch b = train.next()) {
                    mod.forwardBackward(b);
                    mod.update();
                }
            }
            Module def = mod.bucketModule(40);
            Executor base = def.execGroup().executors().get(0);
            for (int key : BUCKETS) {
                Module m = mod.bucketModule(key);
                assertNotNull(m, "bucket " + key);
                Executor ex = m.execGroup().executors().get(0);
                for (String p : List.of("i2h_weight", "i2h_bias", "h2h_weight", "pred_weight", "pred_bias")) {
                    assertSame(base.argDict().get(p), ex.argDict().get(p), p + " of bucket " + key);
                    assertSame(base.gradDict().get(p), ex.gradDict().get(p), "gradient of " + p + " in bucket " + key);
                }
                assertSame(def.updater(), m.updater(), "bucket " + key + " borrows the optimizer state");
                assertSame(def.optimizer(), m.optimizer());
                assertSame(def.getParams().get(0), m.getParams().get(0), "parameter dicts are aliased");
                assertEquals(key, ex.argDict().get("data").shape().get(1));
            }
            // the parameters seen through get_params follow the device arrays of whichever bucket ran last
            float[] dev = base.argDict().get("h2h_weight").toFloatArray();
            assertArrayEquals(dev, mod.getParams().get(0).get("h2h_weight").toFloatArray());
        }
    }

    /**
     * Acceptance: with 5 bucket keys the peak native memory of training is at most 1.2 times that
     * of the largest bucket alone (a plain Module), because the bucket executors place their
     * intermediates in the default executor's pool and their inputs in its buffers.
     */
    @Test
    void peakMemoryOfFiveBucketsStaysNearTheLargestBucket() throws IOException {
        Corpus c = new Corpus(2000);
        int[][] sentences = c.sentences(0, 2000);
        Context cpu = Context.cpu();
        long single;
        Engine.resetPeak(cpu);
        long base = Engine.memory(cpu).currentBytes();
        try (BucketSentenceIter it = iter(sentences, 4);
             Module mod = Module.builder(charRnn(40, c.vocab).symbol()).build()) {
            mod.bind(it.provideData(), it.provideLabel());
            mod.initParams(new Xavier());
            mod.initOptimizer("adam", Map.of("learning_rate", 0.01));
            int n = 0;
            while (it.hasNext() && n < 3) {
                try (DataBatch b = it.next()) {
                    if (!b.bucketKey().equals(40)) {
                        continue;
                    }
                    mod.forwardBackward(b);
                    mod.update();
                    n++;
                }
            }
            assertEquals(3, n);
            single = Engine.memory(cpu).peakBytes() - base;
        }
        Engine.resetPeak(cpu);
        base = Engine.memory(cpu).currentBytes();
        long bucketing;
        long[] ownArena = new long[BUCKETS.length];
        long borrowed = 0;
        try (BucketSentenceIter it = iter(sentences, 4); BucketingModule mod = charModule(c.vocab)) {
            mod.bind(it.provideData(), it.provideLabel(), true, false, false, null, "write");
            mod.initParams(new Xavier());
            mod.initOptimizer("adam", Map.of("learning_rate", 0.01));
            Map<Object, Integer> seen = new HashMap<>();
            while (it.hasNext()) {
                try (DataBatch b = it.next()) {
                    mod.forwardBackward(b);
                    mod.update();
                    seen.merge(b.bucketKey(), 1, Integer::sum);
                }
            }
            assertEquals(BUCKETS.length, seen.size(), "every bucket trained: " + seen);
            bucketing = Engine.memory(cpu).peakBytes() - base;
            for (int i = 0; i < BUCKETS.length; i++) {
                MemoryReport r = mod.bucketModule(BUCKETS[i]).execGroup().executors().get(0).memoryReport();
                ownArena[i] = r.ownArenaBytes();
                if (BUCKETS[i] != 40) {
                    borrowed += r.plannedBytes();
                }
                if (BUCKETS[i] != 40) {
                    assertTrue(r.sharedPool(), "bucket " + BUCKETS[i] + " joined the default executor's pool");
                    assertEquals(0, r.ownWorkspaceBytes(), "bucket " + BUCKETS[i] + " allocated no workspace");
                }
            }
        }
        System.out.printf(Locale.ROOT, "peak native bytes: largest bucket alone %d, 5 buckets %d (ratio %.3f); own arena bytes per "
                + "bucket %s; planned bytes of the 4 smaller buckets %d (what separate arenas would add)%n", single, bucketing,
                (double) bucketing / single, java.util.Arrays.toString(ownArena), borrowed);
        assertTrue(bucketing <= 1.2 * single, "5 buckets peak " + bucketing + " > 1.2 x largest bucket alone " + single);
        for (int i = 0; i < BUCKETS.length - 1; i++) {
            assertEquals(0, ownArena[i], "bucket " + BUCKETS[i] + " fits in the default bucket's arena");
        }
        assertTrue(ownArena[BUCKETS.length - 1] > 0);
    }

    /** Executors sharing a pool compute exactly what they compute alone, in any binding order. */
    @Test
    void sharedExecutorsComputeTheSameAsStandaloneOnes() {
        int vocab = 11;
        Symbol big = charRnn(12, vocab).symbol();
        Symbol small = charRnn(5, vocab).symbol();
        try (NDScope s = NDScope.open()) {
            Map<String, NDArray> params = new LinkedHashMap<>();
            Map<String, NDArray> grads = new LinkedHashMap<>();
            Map<String, long[]> shapes = Map.of("i2h_weight", new long[] {HIDDEN, vocab}, "i2h_bias", new long[] {HIDDEN},
                    "h2h_weight", new long[] {HIDDEN, HIDDEN}, "pred_weight", new long[] {vocab, HIDDEN}, "pred_bias", new long[] {vocab});
            long seed = 7;
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                params.put(e.getKey(), NDArray.randomUniform(-0.3, 0.3, new dev.kiln.ndarray.Shape(e.getValue()), DType.FLOAT32,
                        Context.cpu(), seed++));
                grads.put(e.getKey(), NDArray.zeros(new dev.kiln.ndarray.Shape(e.getValue()), DType.FLOAT32, Context.cpu()));
            }
            float[][] alone = new float[2][];
            float[][] aloneGrad = new float[2][];
            long[] aloneArena = new long[2];
            Symbol[] syms = {big, small};
            int[] ts = {12, 5};
            for (int k = 0; k < 2; k++) {
                try (Executor ex = bindWith(syms[k], ts[k], vocab, params, grads, null)) {
                    ex.forwardBackward();
                    alone[k] = ex.outputs().get(0).toFloatArray();
                    aloneGrad[k] = grads.get("h2h_weight").toFloatArray();
                    aloneArena[k] = ex.memoryReport().arenaBytes();
                }
            }
            for (boolean bigFirst : new boolean[] {true, false}) {
                int first = bigFirst ? 0 : 1;
                int second = 1 - first;
                try (Executor a = bindWith(syms[first], ts[first], vocab, params, grads, null);
                     Executor b = bindWith(syms[second], ts[second], vocab, params, grads, a)) {
                    MemoryReport ra = a.memoryReport();
                    MemoryReport rb = b.memoryReport();
                    assertFalse(ra.sharedPool());
                    assertTrue(rb.sharedPool());
                    assertEquals(aloneArena[first], ra.arenaBytes());
                    String msg = "alone " + aloneArena[first] + " / " + aloneArena[second] + " bytes; second executor's own arena "
                            + rb.ownArenaBytes() + ", pool " + rb.poolBytes();
                    System.out.println("shared pool, " + (bigFirst ? "12 steps first: " : "5 steps first: ") + msg);
                    if (aloneArena[second] <= aloneArena[first]) {
                        assertEquals(0, rb.ownArenaBytes(), "everything fits into the first arena: " + msg);
                    } else {
                        // only what does not fit is allocated
                        assertTrue(rb.ownArenaBytes() > 0 && rb.ownArenaBytes() < aloneArena[second], msg);
                    }
                    assertEquals(ra.poolBytes(), rb.poolBytes(), "one pool");
                    assertTrue(rb.poolBytes() <= 1.2 * Math.max(aloneArena[0], aloneArena[1]), msg);
                    for (int round = 0; round < 2; round++) {
                        b.forwardBackward();
                        assertArrayEquals(alone[second], b.outputs().get(0).toFloatArray(), 1e-6f);
                        assertArrayEquals(aloneGrad[second], grads.get("h2h_weight").toFloatArray(), 1e-6f);
                        a.forwardBackward();
                        assertArrayEquals(alone[first], a.outputs().get(0).toFloatArray(), 1e-6f);
                        assertArrayEquals(aloneGrad[first], grads.get("h2h_weight").toFloatArray(), 1e-6f);
                    }
                }
            }
        }
    }

    /** Binds {@code sym} with (3, t) data of a fixed pattern and labels, the given parameters and gradients. */
    private static Executor bindWith(Symbol sym, int t, int vocab, Map<String, NDArray> params, Map<String, NDArray> grads,
            Executor shared) {
        int batch = 3;
        float[] d = new float[batch * t];
        float[] l = new float[batch * t];
        for (int i = 0; i < d.length; i++) {
            d[i] = (i * 7 + 3) % vocab;
            l[i] = i % 5 == 4 ? -1 : (i * 3 + 1) % vocab;
        }
        Map<String, NDArray> args = new LinkedHashMap<>(params);
        args.put("data", NDArray.create(d, batch, t));
        args.put("softmax_label", NDArray.create(l, batch, t));
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        params.keySet().forEach(k -> reqs.put(k, GradReq.WRITE));
        return Executor.bind(sym, Context.cpu(), args, grads, reqs, Map.of(), new Executor.Options(), shared);
    }

    /** A batch of token ids (2, t) with a fixed pattern, labels shifted by one, as a bucket batch. */
    private static DataBatch tokenBatch(int t, int vocab, int salt) {
        return tokenBatch(2, t, vocab, salt);
    }

    /** A batch of token ids (n, t). */
    private static DataBatch tokenBatch(int n, int t, int vocab, int salt) {
        float[] d = new float[n * t];
        float[] l = new float[n * t];
        for (int i = 0; i < d.length; i++) {
            d[i] = (i * 5 + salt) % vocab;
        }
        for (int i = 0; i < d.length; i++) {
            l[i] = (i + 1) % t == 0 ? -1 : d[i + 1];
        }
        long[] shape = {n, t};
        return new DataBatch(List.of(NDArray.create(d, shape).detach()), List.of(NDArray.create(l, shape).detach()), 0, null, t,
                List.of(new DataDesc("data", shape)), List.of(new DataDesc("softmax_label", shape)));
    }

    /**
     * A bucket larger than the default one still works (MXNet warns and re-allocates its inputs):
     * its executor adds only the intermediates that do not fit, and every bucket computes what a
     * plain Module with the same parameters computes.
     */
    @Test
    void bucketLargerThanTheDefaultReallocatesAndStaysCorrect() {
        int vocab = 9;
        // (all keys >= 8 steps: shorter graphs sum their weight gradients with one ElementWiseSum, MXNet's
        // MXNET_EXEC_INPLACE_GRAD_SUM_CAP policy, and can plan more memory than longer ones)
        try (BucketingModule mod = BucketingModule.builder(key -> charRnn((Integer) key, vocab), 10).build()) {
            mod.bind(List.of(new DataDesc("data", new long[] {2, 10})), List.of(new DataDesc("softmax_label", new long[] {2, 10})));
            mod.initParams(new Xavier());
            Map<Integer, float[]> outs = new LinkedHashMap<>();
            for (int t : new int[] {10, 20, 9, 20, 10}) {
                try (DataBatch b = tokenBatch(t, vocab, t)) {
                    mod.forward(b, false);
                    outs.put(t, mod.getOutputs().get(0).toFloatArray());
                }
            }
            MemoryReport big = mod.bucketModule(20).execGroup().executors().get(0).memoryReport();
            MemoryReport small = mod.bucketModule(9).execGroup().executors().get(0).memoryReport();
            assertTrue(big.sharedPool() && big.ownArenaBytes() > 0 && big.ownArenaBytes() < big.arenaBytes(),
                    "the larger bucket borrows part of the pool: own " + big.ownArenaBytes() + " of " + big.arenaBytes());
            assertEquals(0, small.ownArenaBytes());
            assertEquals(List.of(10, 20, 9), mod.bucketKeys());
            Map<String, NDArray> params = mod.getParams().get(0);
            for (int t : new int[] {9, 10, 20}) {
                try (Module plain = Module.builder(charRnn(t, vocab).symbol()).build(); DataBatch b = tokenBatch(t, vocab, t)) {
                    plain.bind(b.provideData(), b.provideLabel(), false, false, false, null, "write");
                    plain.setParams(params, Map.of());
                    plain.forward(b, false);
                    assertArrayEquals(plain.getOutputs().get(0).toFloatArray(), outs.get(t), 1e-6f, "bucket " + t);
                }
            }
        }
    }

    /** Module.reshape (a smaller last batch) binds the new executor into the bind-time pool: no new arena. */
    @Test
    void moduleReshapeReusesTheBindTimePool() {
        int vocab = 7;
        try (Module mod = Module.builder(charRnn(5, vocab).symbol()).build()) {
            mod.bind(List.of(new DataDesc("data", new long[] {4, 5})), List.of(new DataDesc("softmax_label", new long[] {4, 5})));
            mod.initParams(new Xavier());
            float[] small;
            try (DataBatch b = tokenBatch(5, vocab, 1)) {
                mod.forward(b, false); // (2, 5): reshape
                small = mod.getOutputs().get(0).toFloatArray();
                MemoryReport r = mod.execGroup().executors().get(0).memoryReport();
                assertTrue(r.sharedPool());
                assertEquals(0, r.ownArenaBytes(), "the smaller batch fits into the bind-time arena");
            }
            try (Module plain = Module.builder(charRnn(5, vocab).symbol()).build(); DataBatch b = tokenBatch(5, vocab, 1)) {
                plain.bind(b.provideData(), b.provideLabel(), false, false, false, null, "write");
                plain.setParams(mod.getParams().get(0), Map.of());
                plain.forward(b, false);
                assertArrayEquals(plain.getOutputs().get(0).toFloatArray(), small, 1e-6f);
            }
        }
    }

    /** Two devices: every bucket's group slices the batch, and training equals single-device training. */
    @Test
    void twoDevicesTrainLikeOne() {
        int vocab = 8;
        List<DataDesc> data = List.of(new DataDesc("data", new long[] {4, 10}));
        List<DataDesc> label = List.of(new DataDesc("softmax_label", new long[] {4, 10}));
        try (BucketingModule two = BucketingModule.builder(key -> charRnn((Integer) key, vocab), 10)
                .context(Context.cpu(0), Context.cpu(1)).build();
             BucketingModule one = BucketingModule.builder(key -> charRnn((Integer) key, vocab), 10).build()) {
            two.bind(data, label);
            one.bind(data, label);
            two.initParams(new Xavier());
            one.setParams(two.getParams().get(0), two.getParams().get(1));
            two.initOptimizer("sgd", Map.of("learning_rate", 0.1));
            one.initOptimizer("sgd", Map.of("learning_rate", 0.1));
            int step = 0;
            for (int t : new int[] {10, 8, 9, 10, 8}) {
                try (DataBatch b = tokenBatch(4, t, vocab, step++)) {
                    two.forwardBackward(b);
                    one.forwardBackward(b);
                    assertArrayEquals(one.getOutputs().get(0).toFloatArray(), two.getOutputs().get(0).toFloatArray(), 1e-4f,
                            "bucket " + t);
                    two.update();
                    one.update();
                }
            }
            assertEquals(2, two.bucketModule(8).execGroup().executors().size());
            // float sums over two devices round differently from one device: equal up to rounding
            for (Map.Entry<String, NDArray> e : one.getParams().get(0).entrySet()) {
                assertArrayEquals(e.getValue().toFloatArray(), two.getParams().get(0).get(e.getKey()).toFloatArray(), 1e-4f, e.getKey());
            }
        }
    }

    /** The shared executor must be open and on the same device. */
    @Test
    void sharedExecutorErrors() {
        Symbol sym = charRnn(4, 5).symbol();
        try (NDScope s = NDScope.open()) {
            Map<String, long[]> shapes = Map.of("data", new long[] {2, 4}, "softmax_label", new long[] {2, 4});
            Executor a = Executor.simpleBind(sym, Context.cpu(), shapes, GradReq.WRITE);
            Map<String, NDArray> args1 = new LinkedHashMap<>();
            for (Map.Entry<String, NDArray> e : a.argDict().entrySet()) {
                args1.put(e.getKey(), e.getValue().copyTo(Context.cpu(1)));
            }
            dev.kiln.engine.KilnException e = assertThrows(dev.kiln.engine.KilnException.class,
                    () -> Executor.bind(sym, Context.cpu(1), args1, Map.of(), Map.of(), Map.of(), null, a));
            assertTrue(e.getMessage().contains("shared executor") && e.getMessage().contains("cpu(1)"), e.getMessage());
            a.close();
            Map<String, NDArray> args0 = new LinkedHashMap<>();
            for (Map.Entry<String, NDArray> en : args1.entrySet()) {
                args0.put(en.getKey(), en.getValue().copyTo(Context.cpu()));
            }
            assertThrows(IllegalStateException.class, () -> Executor.bind(sym, Context.cpu(), args0, Map.of(), Map.of(), Map.of(), null, a));
        }
    }

    /** inputs_need_grad: each bucket's input gradient comes from the default bucket's gradient buffer, reshaped. */
    @Test
    void inputGradsThroughBuckets() {
        BucketingModule.SymGen gen = key -> {
            Symbol w = Symbol.variable("a", Map.of("shape", "(1,)", "init", "[\"constant\", {\"value\": 3.0}]"));
            Symbol sym = Symbol.create("MakeLoss", "loss", Map.of(), null, Symbol.broadcastMul("mul", Symbol.variable("data"), w));
            return new BucketingModule.BucketSymbol(sym, List.of("data"), null);
        };
        try (BucketingModule mod = BucketingModule.builder(gen, 6).build()) {
            mod.bind(List.of(new DataDesc("data", new long[] {2, 6})), null, true, true, false, null, "write");
            mod.initParams();
            for (int key : new int[] {6, 3, 5}) {
                float[] x = new float[2 * key];
                java.util.Arrays.fill(x, 2f);
                try (DataBatch b = new DataBatch(List.of(NDArray.create(x, 2, key).detach()), null, 0, null, key, null, null)) {
                    mod.forwardBackward(b);
                }
                NDArray g = mod.getInputGrads().get(0);
                assertArrayEquals(new long[] {2, key}, g.shape().dims());
                for (float v : g.toFloatArray()) {
                    assertEquals(3f, v, 1e-6f);
                }
                float ga = mod.currentModule().execGroup().executors().get(0).gradDict().get("a").toFloatArray()[0];
                assertEquals(2f * 2 * key, ga, 1e-4f, "d loss / d a = sum of x");
            }
            assertTrue(mod.bucketModule(3).execGroup().executors().get(0).memoryReport().sharedPool());
        }
    }

    /** fixed_param_names apply to every bucket: the fixed parameter has no gradient and never changes. */
    @Test
    void fixedParametersStayFixedInEveryBucket() {
        int vocab = 6;
        try (BucketingModule mod = BucketingModule.builder(key -> charRnn((Integer) key, vocab), 10).fixedParamNames("pred_bias")
                .build()) {
            mod.bind(List.of(new DataDesc("data", new long[] {2, 10})), List.of(new DataDesc("softmax_label", new long[] {2, 10})));
            mod.initParams(new Xavier());
            mod.initOptimizer("sgd", Map.of("learning_rate", 0.5));
            Map<String, float[]> before = new LinkedHashMap<>();
            mod.getParams().get(0).forEach((k, v) -> before.put(k, v.toFloatArray()));
            int salt = 0;
            for (int t : new int[] {10, 8, 9}) {
                try (DataBatch b = tokenBatch(t, vocab, salt++)) {
                    mod.forwardBackward(b);
                    mod.update();
                }
                assertFalse(mod.currentModule().execGroup().executors().get(0).gradDict().containsKey("pred_bias"), "bucket " + t);
            }
            Map<String, NDArray> after = mod.getParams().get(0);
            assertArrayEquals(before.get("pred_bias"), after.get("pred_bias").toFloatArray(), 0f);
            assertFalse(java.util.Arrays.equals(before.get("h2h_weight"), after.get("h2h_weight").toFloatArray()));
        }
    }

    /** bind(force_rebind) drops the buckets but keeps the trained parameters (MXNet: e.g. to switch to inference). */
    @Test
    void forceRebindKeepsParameters() {
        int vocab = 6;
        try (BucketingModule mod = BucketingModule.builder(key -> charRnn((Integer) key, vocab), 10).build()) {
            List<DataDesc> data = List.of(new DataDesc("data", new long[] {2, 10}));
            List<DataDesc> label = List.of(new DataDesc("softmax_label", new long[] {2, 10}));
            mod.bind(data, label);
            mod.initParams(new Xavier());
            mod.initOptimizer("sgd", Map.of("learning_rate", 0.5));
            float[] out;
            try (DataBatch b = tokenBatch(8, vocab, 1)) {
                mod.forwardBackward(b);
                mod.update();
                mod.forward(b, false);
                out = mod.getOutputs().get(0).toFloatArray();
            }
            Map<String, float[]> trained = new LinkedHashMap<>();
            mod.getParams().get(0).forEach((k, v) -> trained.put(k, v.toFloatArray()));
            mod.bind(data, label, false, false, true, null, "write");
            assertEquals(List.of(10), mod.bucketKeys(), "buckets were dropped");
            assertFalse(mod.isForTraining());
            assertFalse(mod.isOptimizerInitialized());
            mod.getParams().get(0).forEach((k, v) -> assertArrayEquals(trained.get(k), v.toFloatArray(), 0f, k));
            try (DataBatch b = tokenBatch(8, vocab, 1)) {
                mod.forward(b, null);
                assertArrayEquals(out, mod.getOutputs().get(0).toFloatArray(), 1e-6f);
                assertThrows(IllegalStateException.class, () -> mod.backward(null));
            }
        }
    }

    /** MXNet's test_bucket_module_grad_req: gradients are shared across buckets, and accumulate with grad_req 'add'. */
    @Test
    void gradReqAddAccumulatesAcrossBuckets() {
        int batch = 2;
        for (String req : List.of("write", "add")) {
            BucketingModule.SymGen gen = key -> {
                Symbol data = Symbol.variable("data");
                Symbol w = Symbol.variable("a", Map.of("shape", "(1,)", "init", "[\"one\", {}]"));
                Symbol sym = Symbol.create("MakeLoss", null, Map.of(), null, Symbol.broadcastMul(null, data, w));
                return new BucketingModule.BucketSymbol(sym, List.of("data"), null);
            };
            try (BucketingModule mod = BucketingModule.builder(gen, 10).build()) {
                mod.bind(List.of(new DataDesc("data", new long[] {batch}, DType.FLOAT32, "N")), null, true, false, false, null, req);
                mod.initParams(); // Uniform(0.01), but the variable's init=One() wins
                for (int key : new int[] {10, 5}) {
                    try (DataBatch b = new DataBatch(List.of(NDArray.full(new dev.kiln.ndarray.Shape(batch), 1, DType.FLOAT32,
                            Context.cpu()).detach()), null, 0, null, key, List.of(new DataDesc("data", new long[] {batch},
                            DType.FLOAT32, "N")), null)) {
                        mod.forwardBackward(b);
                    }
                    float g = mod.currentModule().execGroup().executors().get(0).gradDict().get("a").toFloatArray()[0];
                    float expect = req.equals("add") && key == 5 ? 2 * batch : batch;
                    assertEquals(expect, g, 1e-6, req + " after bucket " + key);
                    assertEquals(key, mod.currentBucketKey());
                }
            }
        }
    }

    /** save_checkpoint writes MXNet 1.9's files; load gives a module with the same parameters and outputs. */
    @Test
    void checkpointRoundTrip(@TempDir Path dir) throws IOException {
        Corpus c = new Corpus(800);
        int[][] sentences = c.sentences(0, 800);
        String prefix = dir.resolve("charrnn").toString();
        float[] expected;
        Map<String, float[]> savedParams = new LinkedHashMap<>();
        try (BucketSentenceIter it = iter(sentences, 5); BucketingModule mod = charModule(c.vocab)) {
            mod.bind(it.provideData(), it.provideLabel(), true, false, false, null, "write");
            mod.initParams(new Xavier());
            mod.initOptimizer("sgd", Map.of("learning_rate", 0.1));
            DataBatch probe = null;
            while (it.hasNext()) {
                DataBatch b = it.next();
                mod.forwardBackward(b);
                mod.update();
                if (probe == null && b.bucketKey().equals(16)) {
                    probe = b;
                } else {
                    b.close();
                }
            }
            assertNotNull(probe);
            mod.saveCheckpoint(prefix, 3, false);
            mod.getParams().get(0).forEach((k, v) -> savedParams.put(k, v.toFloatArray()));
            try (DataBatch b = probe) {
                mod.forward(b, false);
                expected = mod.getOutputs().get(0).toFloatArray();
                assertTrue(Files.exists(Path.of(prefix + "-0003.params")));
                assertTrue(Files.exists(Path.of(prefix + ".buckets")));
                for (Object k : mod.bucketKeys()) {
                    assertTrue(Files.exists(Path.of(prefix + "-" + k + "-symbol.json")), "symbol of bucket " + k);
                }
                Map<String, NDArray> keys = NDArray.load(Path.of(prefix + ".buckets"));
                try {
                    assertEquals(1, keys.size());
                    NDArray k = keys.values().iterator().next();
                    assertEquals(DType.INT32, k.dtype());
                    assertEquals(mod.bucketKeys().size(), k.size());
                } finally {
                    keys.values().forEach(NDArray::close);
                }
                try (BucketingModule loaded = BucketingModule.load(prefix, 3, key -> charRnn((Integer) key, c.vocab), 40, null)) {
                    assertTrue(loaded.isParamsInitialized());
                    loaded.bind(it.provideData(), it.provideLabel(), false, false, false, null, "write");
                    loaded.initParams(new Xavier()); // ignored: the loaded parameters stay
                    for (Map.Entry<String, NDArray> e : loaded.getParams().get(0).entrySet()) {
                        assertArrayEquals(savedParams.get(e.getKey()), e.getValue().toFloatArray(), 0f, e.getKey());
                    }
                    assertEquals(savedParams.keySet(), loaded.getParams().get(0).keySet());
                    loaded.forward(b, false);
                    assertArrayEquals(expected, loaded.getOutputs().get(0).toFloatArray(), 1e-6f);
                    assertEquals(16, loaded.currentBucketKey());
                }
                Map<Object, Symbol> syms = Map.of(16, Symbol.load(Path.of(prefix + "-16-symbol.json")));
                try (NDScope scope = NDScope.open()) {
                    Map<String, NDArray> arg = new LinkedHashMap<>();
                    savedParams.forEach((k, v) -> arg.put(k, NDArray.create(v, mod.getParams().get(0).get(k).shape().dims())));
                    try (BucketingModule fromDict = BucketingModule.loadDict(syms, key -> charRnn((Integer) key, c.vocab), 40, arg,
                            Map.of(), null)) {
                        fromDict.bind(it.provideData(), it.provideLabel(), false, false, false, null, "write");
                        fromDict.forward(b, false);
                        assertArrayEquals(expected, fromDict.getOutputs().get(0).toFloatArray(), 1e-6f);
                    }
                }
            }
        }
    }

    /** Preconditions and errors, as MXNet asserts them. */
    @Test
    void preconditionsAndErrors() {
        BucketingModule.SymGen gen = key -> charRnn((Integer) key, 7);
        assertThrows(IllegalArgumentException.class, () -> BucketingModule.builder(gen, null).build());
        try (BucketingModule mod = BucketingModule.builder(gen, 6).build()) {
            assertEquals(List.of("data"), mod.dataNames());
            assertEquals(List.of("softmax_output"), mod.outputNames());
            assertThrows(IllegalStateException.class, () -> mod.initParams());
            List<DataDesc> data = List.of(new DataDesc("data", new long[] {2, 6}));
            List<DataDesc> label = List.of(new DataDesc("softmax_label", new long[] {2, 6}));
            try (Module other = new Module(charRnn(6, 7).symbol())) {
                assertThrows(IllegalArgumentException.class, () -> mod.bind(data, label, true, false, false, other, "write"));
            }
            mod.bind(data, label);
            assertThrows(IllegalStateException.class, () -> mod.forward(new DataBatch(List.of(), null), false));
            mod.initParams();
            assertThrows(IllegalStateException.class, mod::update);
            // a bucket whose parameters differ from the default bucket's is refused with a clear message
            BucketingModule.SymGen bad = key -> (Integer) key == 6 ? charRnn(6, 7)
                    : new BucketingModule.BucketSymbol(Symbol.fullyConnected("other", Symbol.variable("data"), 3), List.of("data"), null);
            try (BucketingModule m2 = BucketingModule.builder(bad, 6).build()) {
                m2.bind(data, label);
                m2.initParams();
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> m2.switchBucket(3, List.of(new DataDesc("data", new long[] {2, 3})), null));
                assertTrue(e.getMessage().contains("other_weight"), e.getMessage());
                assertEquals(6, m2.currentBucketKey(), "the failed switch kept the current bucket");
            }
        }
        // a data name that is not an argument of the default bucket's symbol fails in the constructor
        assertThrows(IllegalArgumentException.class, () -> BucketingModule.builder(
                key -> new BucketingModule.BucketSymbol(charRnn(4, 5).symbol(), List.of("nope"), List.of("softmax_label")), 4).build());
    }
}
