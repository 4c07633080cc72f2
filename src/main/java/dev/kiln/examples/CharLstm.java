package dev.kiln.examples;

import dev.kiln.callback.BatchEndCallback;
import dev.kiln.callback.Speedometer;
import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.init.Initializer;
import dev.kiln.init.Uniform;
import dev.kiln.init.Xavier;
import dev.kiln.io.NDArrayIter;
import dev.kiln.metric.Perplexity;
import dev.kiln.module.BaseModule;
import dev.kiln.module.Module;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.rnn.FusedRNN;
import dev.kiln.symbol.Symbol;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;

/**
 * A character-level LSTM language model on tiny-shakespeare (issue 5), as an MXNet user would
 * write it with the fused {@code RNN} op and a fixed-length {@code Module}:
 *
 * <pre>{@code
 * embed = mx.sym.Embedding(data, input_dim=V, output_dim=E)          # data [N, T]
 * rnn = mx.sym.RNN(mx.sym.transpose(embed, (1, 0, 2)), state_size=H, num_layers=L, mode='lstm', ...)
 * out = mx.sym.Reshape(mx.sym.transpose(rnn, (1, 0, 2)), shape=(-1, H))  # rows in [N, T] order
 * net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(out, num_hidden=V), mx.sym.Reshape(label, shape=(-1,)))
 * mod.fit(train, eval_data=val, eval_metric=mx.metric.Perplexity(None), optimizer='adam', ...)
 * }</pre>
 *
 * <p>Data: {@code ../shared/data/tiny-shakespeare/input.txt} (Karpathy's char-rnn corpus, 1.1 M
 * characters, 65 symbols); the first 90% trains, the last 10% validates. Sequences are
 * non-overlapping windows of T + 1 characters (input: the first T, label: the last T). The
 * initial LSTM states are zeros for every sequence. After training, text is sampled one character
 * at a time from a batch-1 executor that carries the LSTM state from step to step.
 */
public final class CharLstm {
    private CharLstm() {}

    /** Hyper-parameters. */
    public record Config(int seqLen, int batch, int embed, int hidden, int layers, double dropout, double lr, int epochs,
            int maxTrainSeqs, long seed) {
        /** The model: 2 layers of 256, sequence 64, batch 32. */
        public static Config standard() {
            return new Config(64, 32, 64, 256, 2, 0.0, 0.002, 10, Integer.MAX_VALUE, 42);
        }
    }

    /** Per-epoch validation perplexity, and the sampled text. */
    public record Result(List<Double> trainPerplexity, List<Double> validationPerplexity, double unigramPerplexity,
            String sample, double samplesPerSecond) {}

    /** The corpus as indices into its sorted alphabet. */
    public record Corpus(String alphabet, int[] codes) {
        static Corpus of(String text) {
            TreeSet<Character> set = new TreeSet<>();
            for (char c : text.toCharArray()) {
                set.add(c);
            }
            StringBuilder a = new StringBuilder();
            set.forEach(a::append);
            String alphabet = a.toString();
            int[] codes = new int[text.length()];
            for (int i = 0; i < codes.length; i++) {
                codes[i] = alphabet.indexOf(text.charAt(i));
            }
            return new Corpus(alphabet, codes);
        }
    }

    /** The training graph: data [N, T] indices -> softmax over the alphabet for each of the N*T steps. */
    public static Symbol network(int vocab, Config c) {
        Symbol data = Symbol.variable("data");
        Symbol embed = Symbol.create("Embedding", "embed",
                Map.of("input_dim", Integer.toString(vocab), "output_dim", Integer.toString(c.embed())), null, data);
        Symbol tnc = Symbol.create("transpose", "to_tnc", Map.of("axes", "(1, 0, 2)"), null, embed);
        Symbol states = Symbol.create("_zeros", "lstm_h0", Map.of("shape", "(" + c.layers() + ", " + c.batch() + ", " + c.hidden() + ")"), null);
        Symbol cells = Symbol.create("_zeros", "lstm_c0", Map.of("shape", "(" + c.layers() + ", " + c.batch() + ", " + c.hidden() + ")"), null);
        // the fused vector's __init__ is MXNet's FusedRNN initializer (as FusedRNNCell sets it): it unpacks the
        // vector and initializes the weights uniformly, the biases to 0 and the forget-gate biases to 1
        Symbol params = Symbol.variable("lstm_parameters", Map.of("__init__",
                new FusedRNN(new Uniform(0.08), c.hidden(), c.layers(), "lstm", false, 1.0).dumps()));
        Symbol rnn = Symbol.create("RNN", "lstm", rnnAttrs(c, false), null, tnc, params, states, cells);
        Symbol ntc = Symbol.create("transpose", "to_ntc", Map.of("axes", "(1, 0, 2)"), null, rnn);
        Symbol flat = Symbol.create("Reshape", "flat", Map.of("shape", "(-1, " + c.hidden() + ")"), null, ntc);
        Symbol fc = Symbol.fullyConnected("pred", flat, vocab);
        Symbol label = Symbol.create("Reshape", "label_flat", Map.of("shape", "(-1,)"), null, Symbol.variable("softmax_label"));
        return Symbol.builder("SoftmaxOutput").name("softmax").input(fc).input(label).param("normalization", "batch").build();
    }

    static Map<String, String> rnnAttrs(Config c, boolean stateOutputs) {
        Map<String, String> a = new LinkedHashMap<>();
        a.put("state_size", Integer.toString(c.hidden()));
        a.put("num_layers", Integer.toString(c.layers()));
        a.put("mode", "lstm");
        a.put("p", Double.toString(c.dropout()));
        a.put("state_outputs", stateOutputs ? "True" : "False");
        return a;
    }

    /** Non-overlapping windows of T + 1 codes from [from, to): data rows and their shifted labels. */
    static float[][][] windows(int[] codes, int from, int to, int t, int max) {
        int n = Math.min(max, (to - from - 1) / t);
        float[][] x = new float[n][t];
        float[][] y = new float[n][t];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < t; j++) {
                x[i][j] = codes[from + i * t + j];
                y[i][j] = codes[from + i * t + j + 1];
            }
        }
        return new float[][][] {x, y};
    }

    /** Perplexity of the training set's character frequencies on the validation set. */
    static double unigramPerplexity(int[] codes, int split, int vocab) {
        double[] f = new double[vocab];
        for (int i = 0; i < split; i++) {
            f[codes[i]]++;
        }
        double nll = 0;
        for (int i = split; i < codes.length; i++) {
            nll -= Math.log(Math.max(f[codes[i]], 0.5) / split);
        }
        return Math.exp(nll / (codes.length - split));
    }

    /** Trains on the corpus, reports perplexities per epoch and samples {@code sampleChars} characters. */
    public static Result train(String text, Config c, int sampleChars, boolean quiet) {
        Corpus corpus = Corpus.of(text);
        int vocab = corpus.alphabet().length();
        int split = (int) (corpus.codes().length * 0.9);
        float[][][] tr = windows(corpus.codes(), 0, split, c.seqLen(), c.maxTrainSeqs());
        float[][][] va = windows(corpus.codes(), split, corpus.codes().length, c.seqLen(), Integer.MAX_VALUE);
        Initializer.seed(c.seed());
        List<Double> trainPpl = new ArrayList<>();
        List<Double> valPpl = new ArrayList<>();
        long[] seen = {0};
        long[] t0 = {0};
        double[] speed = {0};
        String sample;
        try (NDArrayIter train = NDArrayIter.builder().setData(tr[0]).optLabel(tr[1]).setBatchSize(c.batch())
                .optShuffle(true).optSeed(c.seed()).optLastBatchHandle("discard").build();
             NDArrayIter val = NDArrayIter.builder().setData(va[0]).optLabel(va[1]).setBatchSize(c.batch())
                .optLastBatchHandle("discard").build();
             Module mod = Module.builder(network(vocab, c)).context(Context.cpu()).build()) {
            List<BatchEndCallback> cbs = new ArrayList<>();
            if (!quiet) {
                cbs.add(new Speedometer(c.batch(), 50));
            }
            cbs.add(p -> {
                if (p.nbatch() == 0) {
                    t0[0] = System.nanoTime();
                    seen[0] = 0;
                } else {
                    seen[0] += c.batch();
                    speed[0] = seen[0] / ((System.nanoTime() - t0[0]) / 1e9);
                }
            });
            BaseModule.FitArgs args = new BaseModule.FitArgs().evalData(val).evalMetric(new Perplexity(null))
                    .numEpoch(c.epochs()).optimizer("adam")
                    .optimizerParams(Map.of("learning_rate", c.lr(), "clip_gradient", 5.0))
                    .initializer(new Xavier())
                    .batchEndCallback(cbs.toArray(new BatchEndCallback[0]))
                    .epochSummary((epoch, t, v) -> {
                        trainPpl.add(t.isEmpty() ? Double.NaN : t.get(0).getValue());
                        valPpl.add(v.isEmpty() ? Double.NaN : v.get(0).getValue());
                    });
            mod.fit(train, args);
            sample = sample(mod.getParams().get(0), corpus, c, sampleChars, c.seed());
        }
        return new Result(trainPpl, valPpl, unigramPerplexity(corpus.codes(), split, vocab), sample, speed[0]);
    }

    /**
     * Samples text from trained parameters: a batch-1, one-step graph whose LSTM state comes in
     * through variables and goes out through {@code state_outputs}; each step feeds back the state
     * and a character drawn from the softmax (temperature 0.8), starting from a newline.
     */
    static String sample(Map<String, NDArray> params, Corpus corpus, Config c, int n, long seed) {
        int vocab = corpus.alphabet().length();
        Config one = new Config(1, 1, c.embed(), c.hidden(), c.layers(), 0.0, c.lr(), 0, 0, seed);
        Symbol data = Symbol.variable("data");
        Symbol embed = Symbol.create("Embedding", "embed",
                Map.of("input_dim", Integer.toString(vocab), "output_dim", Integer.toString(c.embed())), null, data);
        Symbol tnc = Symbol.create("transpose", "to_tnc", Map.of("axes", "(1, 0, 2)"), null, embed);
        Symbol rnn = Symbol.create("RNN", "lstm", rnnAttrs(one, true), null, tnc, Symbol.variable("lstm_parameters"),
                Symbol.variable("init_h"), Symbol.variable("init_c"));
        Symbol flat = Symbol.create("Reshape", "flat", Map.of("shape", "(-1, " + c.hidden() + ")"), null, rnn.get(0));
        Symbol prob = Symbol.create("softmax", "prob", Map.of(), null, Symbol.fullyConnected("pred", flat, vocab));
        Symbol net = Symbol.group(prob, rnn.get(1), rnn.get(2));
        long[] st = {c.layers(), 1, c.hidden()};
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("data", new long[] {1, 1});
        shapes.put("init_h", st);
        shapes.put("init_c", st);
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            reqs.put(a, GradReq.NULL);
        }
        Random rng = new Random(seed);
        StringBuilder out = new StringBuilder();
        try (Executor ex = Executor.simpleBind(net, Context.cpu(), shapes, Map.of(), reqs, new Executor.Options())) {
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                NDArray dst = ex.argDict().get(e.getKey());
                if (dst != null) {
                    e.getValue().copyTo(dst);
                }
            }
            float[] zeros = new float[(int) (st[0] * st[2])];
            ex.argDict().get("init_h").set(zeros);
            ex.argDict().get("init_c").set(zeros);
            int ch = corpus.alphabet().indexOf('\n');
            for (int i = 0; i < n; i++) {
                ex.argDict().get("data").set(new float[] {ch});
                ex.forward(false);
                float[] p = ex.outputs().get(0).toFloatArray();
                ch = draw(p, 0.8, rng);
                out.append(corpus.alphabet().charAt(ch));
                ex.outputs().get(1).copyTo(ex.argDict().get("init_h"));
                ex.outputs().get(2).copyTo(ex.argDict().get("init_c"));
            }
        }
        return out.toString();
    }

    /** Draws an index from p^(1/temperature), renormalized. */
    static int draw(float[] p, double temperature, Random rng) {
        double[] w = new double[p.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            w[i] = Math.pow(Math.max(p[i], 1e-12), 1.0 / temperature);
            sum += w[i];
        }
        double u = rng.nextDouble() * sum;
        for (int i = 0; i < w.length; i++) {
            u -= w[i];
            if (u <= 0) {
                return i;
            }
        }
        return w.length - 1;
    }

    /** Command line: {@code --data FILE --epochs N --threads N --max-seqs N}. */
    public static void main(String[] args) throws IOException {
        Path file = Path.of("../shared/data/tiny-shakespeare/input.txt");
        Config c = Config.standard();
        int epochs = c.epochs();
        int maxSeqs = c.maxTrainSeqs();
        int threads = Math.max(1, Runtime.getRuntime().availableProcessors());
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--data" -> file = Path.of(args[i + 1]);
                case "--epochs" -> epochs = Integer.parseInt(args[i + 1]);
                case "--threads" -> threads = Integer.parseInt(args[i + 1]);
                case "--max-seqs" -> maxSeqs = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        c = new Config(c.seqLen(), c.batch(), c.embed(), c.hidden(), c.layers(), c.dropout(), c.lr(), epochs, maxSeqs, c.seed());
        Engine.setNumThreads(threads);
        String text = Files.readString(file, StandardCharsets.UTF_8);
        System.out.printf("char LSTM on %s: %d characters, %d layers x %d, sequence %d, batch %d, %d epochs, %d threads%n",
                file, text.length(), c.layers(), c.hidden(), c.seqLen(), c.batch(), c.epochs(), threads);
        Result r = train(text, c, 500, false);
        for (int e = 0; e < r.validationPerplexity().size(); e++) {
            System.out.printf("epoch %d: train perplexity %.3f, validation perplexity %.3f%n", e,
                    r.trainPerplexity().get(e), r.validationPerplexity().get(e));
        }
        System.out.printf("unigram perplexity %.2f; %.0f sequences/s%n%nsample:%n%s%n", r.unigramPerplexity(),
                r.samplesPerSecond(), r.sample());
    }
}
