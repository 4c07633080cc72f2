package dev.kiln.kvstore.launch;

/**
 * Told by {@link Launcher} when it has started a rank, e.g. so that a test can send the process a
 * signal mid-run. Called on the thread that runs {@link Launcher#run()}, once per rank and attempt,
 * before the launcher waits; it should return quickly and must not throw.
 */
@FunctionalInterface
public interface RankListener {
    /**
     * Rank {@code rank} of attempt {@code attempt} (0 for the first start, then one more per restart)
     * is running as {@code process}; the handle stays valid after the process ends.
     */
    void started(int attempt, int rank, ProcessHandle process);
}
