package dev.kiln.io;

import java.nio.file.Path;

/**
 * A data file's content cannot be read as the iterator was told to read it: a value that is not
 * a number of the requested type, a row of the wrong length, a truncated or inconsistent file.
 * The message names the file and, for text files, the 1-based line.
 */
public class MalformedDataException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final long line;

    /** An error at {@code line} (1-based; 0 when not line-oriented) of {@code file}. */
    public MalformedDataException(Path file, long line, String message) {
        super((file == null ? "" : file + (line > 0 ? ":" + line : "") + ": ") + message);
        this.file = file;
        this.line = line;
    }

    /** The file, or null. */
    public Path file() {
        return file;
    }

    /** The 1-based line, or 0 when the error is not tied to a line. */
    public long line() {
        return line;
    }
}
