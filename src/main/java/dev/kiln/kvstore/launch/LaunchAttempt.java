package dev.kiln.kvstore.launch;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.OptionalInt;

/**
 * How one start of the whole group ended: every rank's exit code and last output lines, which rank
 * failed first (if any), whether the wall-clock limit stopped it, and how long it took.
 *
 * <p>Exit codes follow {@link Process#exitValue()}: a rank killed by signal {@code s} shows {@code
 * 128 + s} (137 for SIGKILL, 143 for SIGTERM). A rank the launcher stopped after another failed
 * carries the code its stop produced, and {@link #stopped(int)} is true for it.
 *
 * <p>Thread-safety: immutable.
 */
public final class LaunchAttempt {
    /** Lines of the failed rank's output quoted by {@link #describe()}. */
    static final int DESCRIBED_LINES = 5;

    /** Exit code recorded for a rank that did not end even after SIGKILL (e.g. stuck in the kernel). */
    public static final int NO_EXIT = -1;

    private static final String[] SIGNALS = {null, "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT",
        "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM"};

    private final int attempt;
    private final int masterPort;
    private final int[] exitCodes;
    private final boolean[] stopped;
    private final List<List<String>> output;
    private final int failedRank;
    private final Duration timeLimit;
    private final Duration endedAfter;
    private final Duration wallTime;

    /**
     * @param failedRank the first rank that ended abnormally, or -1
     * @param timeLimit the wall-clock limit when it stopped this attempt, else null
     * @param endedAfter time from the start to the first failure, the limit, or the last exit
     */
    LaunchAttempt(int attempt, int masterPort, int[] exitCodes, boolean[] stopped, List<List<String>> output,
            int failedRank, Duration timeLimit, Duration endedAfter, Duration wallTime) {
        this.attempt = attempt;
        this.masterPort = masterPort;
        this.exitCodes = exitCodes.clone();
        this.stopped = stopped.clone();
        List<List<String>> copy = new ArrayList<>();
        for (List<String> lines : output) {
            copy.add(List.copyOf(lines));
        }
        this.output = List.copyOf(copy);
        this.failedRank = failedRank;
        this.timeLimit = timeLimit;
        this.endedAfter = endedAfter;
        this.wallTime = wallTime;
    }

    /** 0 for the first start, then one more per restart (the workers' {@code KILN_RESTART}). */
    public int attempt() {
        return attempt;
    }

    /** The rendezvous port given to the ranks as {@code MASTER_PORT}. */
    public int masterPort() {
        return masterPort;
    }

    /** The number of ranks. */
    public int worldSize() {
        return exitCodes.length;
    }

    /** Whether every rank exited 0. */
    public boolean succeeded() {
        return failedRank < 0 && timeLimit == null;
    }

    /** Whether the wall-clock limit stopped this attempt. */
    public boolean timedOut() {
        return timeLimit != null;
    }

    /** The first rank that ended abnormally (non-zero code or signal), if any. */
    public OptionalInt failedRank() {
        return failedRank < 0 ? OptionalInt.empty() : OptionalInt.of(failedRank);
    }

    /** Rank {@code rank}'s exit code ({@code 128 + signal} after a signal, {@link #NO_EXIT} if it never ended). */
    public int exitCode(int rank) {
        return exitCodes[rank];
    }

    /** Every rank's exit code, indexed by rank (a copy). */
    public int[] exitCodes() {
        return exitCodes.clone();
    }

    /** Whether the launcher stopped rank {@code rank} (after another's failure or at the time limit). */
    public boolean stopped(int rank) {
        return stopped[rank];
    }

    /**
     * The lines rank {@code rank} printed (stdout and stderr merged, without the prefix); only the
     * newest ones when it printed more than the launcher keeps ({@link Launcher.Builder#optKeepLines}).
     */
    public List<String> output(int rank) {
        return output.get(rank);
    }

    /** Time from the first start to the last exit. */
    public Duration wallTime() {
        return wallTime;
    }

    /**
     * One line, e.g. {@code rank 1 failed with exit code 137 (SIGKILL) after 3.2 s; others stopped.
     * Last output of rank 1: ...}.
     */
    public String describe() {
        if (timeLimit != null) {
            return "wall-clock limit of " + seconds(timeLimit) + " reached; "
                    + stoppedText("ranks", "no rank was running") + ".";
        }
        if (failedRank < 0) {
            return "all " + worldSize() + " ranks exited 0 in " + seconds(wallTime) + ".";
        }
        return "rank " + failedRank + " failed with " + codeText(exitCodes[failedRank]) + " after "
                + seconds(endedAfter) + "; " + stoppedText("others", "the others had exited") + alsoFailedText() + ". "
                + lastOutputText(failedRank);
    }

    /** The other ranks that ended abnormally on their own (e.g. a peer's collective error), if any. */
    private String alsoFailedText() {
        StringBuilder s = new StringBuilder();
        for (int r = 0; r < exitCodes.length; r++) {
            if (r != failedRank && !stopped[r] && exitCodes[r] != 0) {
                s.append("; rank ").append(r).append(" also ended with ").append(codeText(exitCodes[r]));
            }
        }
        return s.toString();
    }

    /** {@link #describe()} without the quoted output and the final period (for the history of restarted attempts). */
    String summary() {
        String d = describe();
        int cut = d.indexOf(". Last output of rank");
        if (cut < 0) {
            cut = d.indexOf(". Rank " + failedRank + " printed nothing");
        }
        if (cut < 0) {
            cut = d.endsWith(".") ? d.length() - 1 : d.length();
        }
        return d.substring(0, cut);
    }

    /** {@code "exit code 137 (SIGKILL)"}. */
    static String codeText(int code) {
        if (code == NO_EXIT) {
            return "no exit (still alive after SIGKILL)";
        }
        String sig = signalName(code);
        return "exit code " + code + (sig == null ? "" : " (" + sig + ")");
    }

    /** The signal behind exit code {@code code} ({@code 128 + signal}), or null. */
    static String signalName(int code) {
        int s = code - 128;
        if (s <= 0 || s > 64) {
            return null;
        }
        return s < SIGNALS.length ? SIGNALS[s] : "signal " + s;
    }

    private String stoppedText(String allWord, String none) {
        List<Integer> ranks = new ArrayList<>();
        for (int r = 0; r < stopped.length; r++) {
            if (stopped[r]) {
                ranks.add(r);
            }
        }
        int others = failedRank < 0 ? worldSize() : worldSize() - 1;
        if (ranks.isEmpty()) {
            return none;
        }
        if (ranks.size() == others) {
            return (failedRank < 0 ? "all " + others + " " + allWord : allWord) + " stopped";
        }
        return (ranks.size() == 1 ? "rank " : "ranks ") + ranks.toString().replaceAll("[\\[\\]]", "") + " stopped";
    }

    private String lastOutputText(int rank) {
        List<String> lines = output.get(rank);
        if (lines.isEmpty()) {
            return "Rank " + rank + " printed nothing.";
        }
        List<String> tail = lines.subList(Math.max(0, lines.size() - DESCRIBED_LINES), lines.size());
        return "Last output of rank " + rank + ": " + String.join(" | ", tail);
    }

    static String seconds(Duration d) {
        return String.format(Locale.ROOT, "%.1f s", d.toMillis() / 1000.0);
    }

    @Override
    public String toString() {
        return "LaunchAttempt[" + attempt + ": " + Arrays.toString(exitCodes) + ", " + summary() + "]";
    }
}
