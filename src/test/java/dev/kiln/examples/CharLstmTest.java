package dev.kiln.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.testutil.NoLeaks;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The character LSTM language model of issue 5 on tiny-shakespeare (first 90% train, last 10%
 * validation): a shortened run in the default suite that must beat the unigram model's validation
 * perplexity, and a 6-epoch run of the example's model (2 x 256 LSTM, sequence 64) to perplexity
 * <= 6.0 under -Pslow.
 */
@ExtendWith(NoLeaks.class)
class CharLstmTest {
    static String corpus() throws Exception {
        Path f = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "tiny-shakespeare", "input.txt");
        String text = Files.readString(f, StandardCharsets.UTF_8);
        assertEquals(1_115_394, text.length(), "tiny-shakespeare as documented in shared/data/README.md");
        return text;
    }

    static void print(CharLstm.Result r) {
        for (int e = 0; e < r.validationPerplexity().size(); e++) {
            System.out.printf("char LSTM epoch %d: train perplexity %.3f, validation perplexity %.3f%n", e,
                    r.trainPerplexity().get(e), r.validationPerplexity().get(e));
        }
        System.out.printf("unigram perplexity %.2f, %.0f sequences/s; sample:%n%s%n", r.unigramPerplexity(),
                r.samplesPerSecond(), r.sample());
    }

    @Test
    void shortRunBeatsUnigramPerplexity() throws Exception {
        CharLstm.Config c = CharLstm.Config.standard();
        // 1 epoch over 3,200 training sequences (100 batches of 32) of the standard model
        c = new CharLstm.Config(c.seqLen(), c.batch(), c.embed(), c.hidden(), c.layers(), c.dropout(), 0.004, 1, 3_200,
                c.seed());
        CharLstm.Result r = CharLstm.train(corpus(), c, 200, true);
        print(r);
        double val = r.validationPerplexity().get(0);
        assertTrue(r.unigramPerplexity() > 20 && r.unigramPerplexity() < 35, "unigram perplexity " + r.unigramPerplexity());
        assertTrue(val < r.unigramPerplexity() * 0.8, "validation perplexity " + val + " vs unigram " + r.unigramPerplexity());
        assertEquals(200, r.sample().length());
    }

    @Test
    @Tag("slow")
    void fullRunReachesPerplexitySix() throws Exception {
        // 6 of the example's 10 epochs: 5.91 after 3 epochs and 5.41 after 5 measured here (about 2 min per epoch)
        CharLstm.Config c = CharLstm.Config.standard();
        c = new CharLstm.Config(c.seqLen(), c.batch(), c.embed(), c.hidden(), c.layers(), c.dropout(), c.lr(), 6,
                c.maxTrainSeqs(), c.seed());
        CharLstm.Result r = CharLstm.train(corpus(), c, 500, true);
        print(r);
        double best = r.validationPerplexity().stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
        assertTrue(best <= 6.0, "best validation perplexity " + best);
    }
}
