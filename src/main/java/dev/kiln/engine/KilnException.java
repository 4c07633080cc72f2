package dev.kiln.engine;

/**
 * A failure reported by the native core: invalid graph, shape or type inference error, bad
 * parameter, unsupported operator, I/O problem. The message names the operator, the argument
 * and the shapes involved. The JVM and all native state stay valid after it is thrown.
 */
public class KilnException extends RuntimeException {
    /** Creates an exception with a message. */
    public KilnException(String message) {
        super(message);
    }

    /** Creates an exception with a message and a cause. */
    public KilnException(String message, Throwable cause) {
        super(message, cause);
    }
}
