package dev.kiln.engine;

/** An allocation the native allocator could not serve; the message names the bytes requested. */
public class KilnOutOfMemoryException extends KilnException {
    /** Creates the exception. */
    public KilnOutOfMemoryException(String message) {
        super(message);
    }
}
