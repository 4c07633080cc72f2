package dev.kiln.kvstore;

import dev.kiln.engine.KilnException;

/**
 * Distributed training stopped: a collective failed (a peer died or hung past the deadline) while
 * this worker was at {@link #epoch()} / {@link #step()}. The cause, a {@link CollectiveException},
 * names the operation and the keys. Restart the job from its last checkpoint.
 */
public class DistributedTrainingException extends KilnException {
    private final int rank;
    private final int numWorkers;
    private final int epoch;
    private final int step;

    /** Creates the report of worker {@code rank} of {@code numWorkers}, stopped at {@code epoch}, batch {@code step}. */
    public DistributedTrainingException(int rank, int numWorkers, int epoch, int step, CollectiveException cause) {
        super("distributed training stopped on rank " + rank + " of " + numWorkers + " at epoch " + epoch + ", step " + step + ": "
                + cause.getMessage(), cause);
        this.rank = rank;
        this.numWorkers = numWorkers;
        this.epoch = epoch;
        this.step = step;
    }

    /** The rank of the worker that reports. */
    public int rank() {
        return rank;
    }

    /** The number of workers in the job. */
    public int numWorkers() {
        return numWorkers;
    }

    /** The epoch the worker was in. */
    public int epoch() {
        return epoch;
    }

    /** The batch index within the epoch. */
    public int step() {
        return step;
    }
}
