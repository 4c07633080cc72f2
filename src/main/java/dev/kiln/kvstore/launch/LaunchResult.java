package dev.kiln.kvstore.launch;

import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;

/**
 * What {@link Launcher#run()} did: every attempt in order (one, plus one per restart). The
 * accessors without an attempt argument describe the last attempt, which decides the outcome.
 *
 * <p>Thread-safety: immutable.
 */
public final class LaunchResult {
    /** {@link #exitStatus()} when the wall-clock limit stopped the job (GNU {@code timeout}'s code). */
    public static final int TIMEOUT_STATUS = 124;

    private final List<LaunchAttempt> attempts;
    private final Duration wallTime;

    LaunchResult(List<LaunchAttempt> attempts, Duration wallTime) {
        if (attempts.isEmpty()) {
            throw new IllegalArgumentException("a launch has at least one attempt");
        }
        this.attempts = List.copyOf(attempts);
        this.wallTime = wallTime;
    }

    /** Every attempt, the first start first. */
    public List<LaunchAttempt> attempts() {
        return attempts;
    }

    /** The attempt that decided the outcome. */
    public LaunchAttempt last() {
        return attempts.get(attempts.size() - 1);
    }

    /** Whether the last attempt's ranks all exited 0. */
    public boolean succeeded() {
        return last().succeeded();
    }

    /** Whether the wall-clock limit stopped the job. */
    public boolean timedOut() {
        return last().timedOut();
    }

    /** The rank whose failure ended the last attempt, if any. */
    public OptionalInt failedRank() {
        return last().failedRank();
    }

    /** Rank {@code rank}'s exit code in the last attempt. */
    public int exitCode(int rank) {
        return last().exitCode(rank);
    }

    /** Every rank's exit code in the last attempt, indexed by rank. */
    public int[] exitCodes() {
        return last().exitCodes();
    }

    /** Rank {@code rank}'s output lines in the last attempt. */
    public List<String> output(int rank) {
        return last().output(rank);
    }

    /** Time from the first start to the end of the last attempt. */
    public Duration wallTime() {
        return wallTime;
    }

    /**
     * The process exit status a command-line launcher reports: 0 on success, {@link
     * #TIMEOUT_STATUS} after the wall-clock limit, else the failed rank's exit code when it is in
     * 1..255, else 1.
     */
    public int exitStatus() {
        if (succeeded()) {
            return 0;
        }
        if (timedOut()) {
            return TIMEOUT_STATUS;
        }
        int code = last().exitCode(failedRank().getAsInt());
        return code >= 1 && code <= 255 ? code : 1;
    }

    /**
     * One line: the last attempt's {@link LaunchAttempt#describe()}; after restarts preceded by the
     * attempt number and the earlier attempts' outcomes, e.g. {@code attempt 2 (after 1 restart;
     * attempt 1: rank 1 failed with exit code 5 after 0.4 s; others stopped): all 2 ranks exited 0 in
     * 0.3 s.}
     */
    public String describe() {
        if (attempts.size() == 1) {
            return last().describe();
        }
        int restarts = attempts.size() - 1;
        StringBuilder s = new StringBuilder("attempt ").append(attempts.size()).append(" (after ").append(restarts)
                .append(restarts == 1 ? " restart" : " restarts");
        for (LaunchAttempt a : attempts.subList(0, restarts)) {
            s.append("; attempt ").append(a.attempt() + 1).append(": ").append(a.summary());
        }
        s.append("): ").append(last().describe());
        return s.toString();
    }

    @Override
    public String toString() {
        return "LaunchResult[" + describe() + "]";
    }
}
