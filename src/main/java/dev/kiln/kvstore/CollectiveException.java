package dev.kiln.kvstore;

import dev.kiln.engine.KilnException;

/**
 * A collective operation failed: a peer died, closed its connection, or did not answer within the
 * deadline. The group is unusable afterwards; the job should stop and restart from its last
 * checkpoint.
 */
public class CollectiveException extends KilnException {
    /** Creates an exception with a message. */
    public CollectiveException(String message) {
        super(message);
    }

    /** Creates an exception with a message and a cause. */
    public CollectiveException(String message, Throwable cause) {
        super(message, cause);
    }
}
