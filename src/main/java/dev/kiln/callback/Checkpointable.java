package dev.kiln.callback;

import java.io.IOException;

/**
 * Something that can write an MXNet checkpoint of itself: {@code <prefix>-symbol.json},
 * {@code <prefix>-%04d.params} and, on request, {@code <prefix>-%04d.states}. The Module
 * implements it; {@link Callbacks#moduleCheckpoint} drives it.
 */
public interface Checkpointable {
    /**
     * Saves a checkpoint (MXNet's {@code save_checkpoint}).
     *
     * @param prefix path prefix of the files
     * @param epoch the epoch number written in the file names (zero-padded to 4 digits)
     * @param saveOptimizerStates also write the optimizer states
     * @throws IOException if a file cannot be written
     */
    void saveCheckpoint(String prefix, int epoch, boolean saveOptimizerStates) throws IOException;
}
