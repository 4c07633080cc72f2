package dev.kiln.callback;

import java.io.PrintStream;
import java.util.Objects;

/**
 * A terminal progress bar redrawn in place after every batch (MXNet's
 * {@code mx.callback.ProgressBar}): for batch {@code nbatch} (0-based) of {@code total},
 * {@code filled = round(length * nbatch / total)} (Python 3's half-to-even {@code round}) and
 * {@code pct = ceil(100 * nbatch / total)}, drawn as {@code [====------] 20%} followed by a
 * carriage return. Because MXNet passes the 0-based index, the last of 5 batches shows 80%.
 *
 * <p>MXNet sends the bar through the logging module, one log record per batch; Kiln writes it to a
 * {@link PrintStream} (default {@link System#out}) and flushes, so a terminal shows one line that
 * fills up, and nothing is logged through SLF4J (which would print a record per batch). When
 * {@code nbatch} exceeds {@code total} the bar stays full (MXNet draws it longer) and the
 * percentage goes past 100.
 *
 * <p>Thread-safety: stateless apart from the stream; calls from several threads interleave
 * their output. Ownership: the stream is borrowed, never closed.
 */
public final class ProgressBar implements BatchEndCallback {
    private final int total;
    private final int length;
    private final PrintStream out;

    /**
     * A bar of 80 characters on {@link System#out}.
     *
     * @param total the number of batches in an epoch, {@code >= 1}
     */
    public ProgressBar(int total) {
        this(total, 80);
    }

    /**
     * A bar on {@link System#out}.
     *
     * @param total the number of batches in an epoch, {@code >= 1}
     * @param length the bar width in characters, {@code >= 1}
     */
    public ProgressBar(int total, int length) {
        this(total, length, System.out);
    }

    /**
     * A bar on the given stream.
     *
     * @param total the number of batches in an epoch, {@code >= 1}
     * @param length the bar width in characters, {@code >= 1}
     * @param out where to draw (borrowed, flushed after every draw)
     * @throws IllegalArgumentException if total or length is below 1
     */
    public ProgressBar(int total, int length, PrintStream out) {
        if (total < 1) {
            throw new IllegalArgumentException("ProgressBar: total must be >= 1, got " + total);
        }
        if (length < 1) {
            throw new IllegalArgumentException("ProgressBar: length must be >= 1, got " + length);
        }
        this.total = total;
        this.length = length;
        this.out = Objects.requireNonNull(out, "ProgressBar: out");
    }

    /**
     * The text drawn for a batch index, without the trailing carriage return.
     *
     * @param nbatch the 0-based batch index, {@code >= 0}
     * @return e.g. {@code [==--------] 20%}
     */
    public String render(int nbatch) {
        if (nbatch < 0) {
            throw new IllegalArgumentException("ProgressBar: nbatch must be >= 0, got " + nbatch);
        }
        long filled = (long) Math.rint((double) length * nbatch / total);
        filled = Math.min(filled, length);
        long pct = (long) Math.ceil(100.0 * nbatch / total);
        StringBuilder b = new StringBuilder(length + 8).append('[');
        for (int i = 0; i < length; i++) {
            b.append(i < filled ? '=' : '-');
        }
        return b.append("] ").append(pct).append('%').toString();
    }

    /**
     * Draws the bar for the batch, followed by {@code '\r'}, and flushes the stream.
     *
     * @param param the batch
     */
    @Override
    public void invoke(BatchEndParam param) {
        out.print(render(param.nbatch()) + "\r");
        out.flush();
    }
}
