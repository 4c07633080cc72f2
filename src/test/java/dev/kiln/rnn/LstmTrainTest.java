package dev.kiln.rnn;

import dev.kiln.init.Xavier;
import dev.kiln.io.NDArrayIter;
import dev.kiln.module.BaseModule;
import dev.kiln.module.Module;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.NameManager;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A small unrolled LSTM learns next-character prediction on the first 800 characters of
 * tiny-shakespeare (one-hot inputs, since this worktree has no Embedding op): the
 * cross-entropy on the training text drops well below its initial value (about log V).
 */
@ExtendWith(NoLeaks.class)
class LstmTrainTest {
    static final int T = 8;
    static final int H = 32;
    static final int CHARS = 800;

    @Test
    void charLstmLossDecreases() throws IOException {
        Path f = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "tiny-shakespeare", "input.txt");
        String text = new String(Files.readAllBytes(f), StandardCharsets.US_ASCII).substring(0, CHARS);
        assertTrue(text.startsWith("First Citizen:"), text.substring(0, 20));
        TreeSet<Character> set = new TreeSet<>();
        for (char c : text.toCharArray()) {
            set.add(c);
        }
        List<Character> vocab = List.copyOf(set);
        int v = vocab.size();
        int samples = (CHARS - 1) / T;
        float[] x = new float[samples * T * v];
        float[] y = new float[samples * T];
        for (int s = 0; s < samples; s++) {
            for (int t = 0; t < T; t++) {
                int pos = s * T + t;
                x[(s * T + t) * v + vocab.indexOf(text.charAt(pos))] = 1f;
                y[s * T + t] = vocab.indexOf(text.charAt(pos + 1));
            }
        }
        Symbol net;
        try (NameManager nm = NameManager.scope()) {
            LSTMCell cell = new LSTMCell(H, "lstm_", null, 1.0);
            Unrolled u = cell.unroll(T, Symbol.variable("data"), null, "NTC", true);
            Symbol pred = Symbol.fullyConnected("pred", Symbol.reshape(null, u.merged(), -1, H), v);
            net = Symbol.softmaxOutput("softmax", pred, Symbol.reshape(null, Symbol.variable("softmax_label"), -1));
        }
        try (NDScope scope = NDScope.open();
             NDArrayIter it = NDArrayIter.builder().setData(x, samples, T, v).optLabel(y, samples, T).setBatchSize(16)
                     .build();
             Module mod = Module.builder(net).dataNames("data").labelNames("softmax_label").build()) {
            mod.bind(it.provideData(), it.provideLabel(), true, false, false, null, "write");
            mod.initParams(new Xavier(), null, null, false, false, false);
            NDArray fb = mod.getParams().get(0).get("lstm_i2h_bias");
            float[] bias = fb.toFloatArray();
            assertEquals(1f, bias[H], "forget block initialized to forget_bias by the lstmbias __init__ attribute");
            assertEquals(0f, bias[0]);
            double before = mod.score(it, "ce").get(0).getValue();
            assertTrue(Math.abs(before - Math.log(v)) < 0.5, "initial loss near log V: " + before + " vs " + Math.log(v));
            mod.fit(it, new BaseModule.FitArgs().numEpoch(25).optimizer("adam")
                    .optimizerParams(Map.of("learning_rate", 0.01)).evalMetric("ce"));
            double after = mod.score(it, "ce").get(0).getValue();
            System.out.printf("char LSTM (V=%d, %d samples x %d steps): cross-entropy %.4f -> %.4f%n", v, samples, T, before,
                    after);
            assertTrue(after < 0.6 * before, "loss " + before + " -> " + after);
        }
    }
}
