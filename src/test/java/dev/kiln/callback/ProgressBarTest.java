package dev.kiln.callback;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ProgressBarTest {
    @Test
    void fiveBatchesRedrawInPlaceAndTheLastShowsEightyPercent() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        ProgressBar bar = new ProgressBar(5, 10, out);
        for (int b = 0; b < 5; b++) {
            bar.invoke(new BatchEndParam(0, b, null));
        }
        assertEquals("[----------] 0%\r[==--------] 20%\r[====------] 40%\r[======----] 60%\r[========--] 80%\r",
                bytes.toString(StandardCharsets.UTF_8));
    }

    @Test
    void defaultLengthIsEighty() {
        String s = new ProgressBar(5).render(1);
        assertEquals("[" + "=".repeat(16) + "-".repeat(64) + "] 20%", s);
    }

    @Test
    void roundsHalfToEvenAndCeilsThePercentage() {
        ProgressBar bar = new ProgressBar(4, 10, new PrintStream(new ByteArrayOutputStream()));
        assertEquals("[==--------] 25%", bar.render(1));   // 2.5 -> 2 (Python 3 round)
        assertEquals("[========--] 75%", bar.render(3));   // 7.5 -> 8
        ProgressBar third = new ProgressBar(3, 3, new PrintStream(new ByteArrayOutputStream()));
        assertEquals("[=--] 34%", third.render(1));        // ceil(33.33)
        assertEquals("[===] 100%", third.render(3));
        assertEquals("[===] 167%", third.render(5));       // past the end: the bar stays full
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> new ProgressBar(0));
        assertThrows(IllegalArgumentException.class, () -> new ProgressBar(5, 0));
        assertThrows(IllegalArgumentException.class, () -> new ProgressBar(5).render(-1));
        assertThrows(NullPointerException.class, () -> new ProgressBar(5, 10, null));
    }
}
