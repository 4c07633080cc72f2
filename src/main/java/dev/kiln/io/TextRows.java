package dev.kiln.io;

import dev.kiln.ndarray.DType;

import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * Reads the non-blank lines of one text file or of every file of a directory (sorted by name,
 * hidden files skipped), gzip-compressed or not (detected by the magic bytes), optionally skipping
 * header lines at the top of each file; and parses delimited numeric rows into a buffer. Keeps
 * the current file and line for error messages. Not thread-safe.
 */
final class TextRows implements Closeable {
    private final List<Path> files;
    private final int skipLines;
    private int fileIndex;
    private BufferedReader reader;
    private Path current;
    private long lineNo;

    /** Rows of {@code path} (a file, or a directory whose regular files are read in name order). */
    TextRows(Path path, int skipLines, String what) throws IOException {
        if (skipLines < 0) {
            throw new IllegalArgumentException(what + ": lines to skip must be >= 0, got " + skipLines);
        }
        this.files = listFiles(path, what);
        this.skipLines = skipLines;
    }

    static List<Path> listFiles(Path path, String what) throws IOException {
        if (Files.isDirectory(path)) {
            List<Path> out = new ArrayList<>();
            try (Stream<Path> s = Files.list(path)) {
                s.filter(Files::isRegularFile).filter(p -> !p.getFileName().toString().startsWith(".")).sorted().forEach(out::add);
            }
            if (out.isEmpty()) {
                throw new IOException(what + ": directory " + path + " has no files");
            }
            return out;
        }
        if (!Files.isRegularFile(path)) {
            throw new IOException(what + ": no such file or directory: " + path);
        }
        return List.of(path);
    }

    /** Opens a file for reading, decompressing it when it starts with the gzip magic bytes. */
    static InputStream open(Path p) throws IOException {
        InputStream in = new BufferedInputStream(Files.newInputStream(p), 1 << 16);
        in.mark(2);
        int b0 = in.read();
        int b1 = in.read();
        in.reset();
        if (b0 == 0x1f && b1 == 0x8b) {
            try {
                return new BufferedInputStream(new GZIPInputStream(in, 1 << 16), 1 << 16);
            } catch (IOException e) {
                in.close();  // a truncated gzip header: do not leak the file handle
                throw e;
            }
        }
        return in;
    }

    /** The next non-blank line, or null at the end of the last file. */
    String next() {
        try {
            while (true) {
                if (reader == null) {
                    if (fileIndex >= files.size()) {
                        return null;
                    }
                    current = files.get(fileIndex);
                    reader = new BufferedReader(new InputStreamReader(open(current), StandardCharsets.UTF_8), 1 << 16);
                    lineNo = 0;
                    for (int i = 0; i < skipLines; i++) {
                        if (reader.readLine() == null) {
                            break;
                        }
                        lineNo++;
                    }
                }
                String line = reader.readLine();
                if (line == null) {
                    reader.close();
                    reader = null;
                    fileIndex++;
                    continue;
                }
                lineNo++;
                if (lineNo == 1 && !line.isEmpty() && line.charAt(0) == '\uFEFF') {
                    line = line.substring(1);
                }
                if (line.isBlank()) {
                    continue;
                }
                return line;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + current, e);
        }
    }

    /** Back to the first line of the first file. */
    void rewind() {
        closeReader();
        fileIndex = 0;
        current = null;
        lineNo = 0;
    }

    /** The file of the last line returned. */
    Path file() {
        return current;
    }

    /** The 1-based line number of the last line returned. */
    long line() {
        return lineNo;
    }

    private void closeReader() {
        if (reader != null) {
            try {
                reader.close();
            } catch (IOException ignored) {
                // read-only stream: nothing to flush
            }
            reader = null;
        }
    }

    @Override
    public void close() {
        closeReader();
        fileIndex = files.size();
    }

    // ---- parsing ---------------------------------------------------------------------------------

    /**
     * Splits {@code line} at {@code delim} (or at runs of whitespace when {@code delim} is a
     * space), trimming each value; one trailing delimiter is allowed (as MXNet's CSV parser).
     * Throws {@link MalformedDataException} for an empty value.
     */
    static List<String> split(String line, char delim, Path file, long lineNo) {
        List<String> out = new ArrayList<>();
        if (delim == ' ') {
            for (String t : line.trim().split("\\s+")) {
                if (!t.isEmpty()) {
                    out.add(t);
                }
            }
            return out;
        }
        int pos = 0;
        int n = line.length();
        while (true) {
            int end = line.indexOf(delim, pos);
            boolean last = end < 0;
            if (last) {
                end = n;
            }
            String tok = line.substring(pos, end).trim();
            if (tok.isEmpty()) {
                if (last && !out.isEmpty()) {
                    break; // trailing delimiter
                }
                throw new MalformedDataException(file, lineNo, "empty value in column " + (out.size() + 1));
            }
            out.add(tok);
            if (last) {
                break;
            }
            pos = end + 1;
        }
        return out;
    }

    /**
     * Parses the values of one row into {@code buf} at byte offset {@code off} as {@code dtype}
     * (float32, int32 or int64). The row must have exactly {@code expected} values. One pass over
     * the characters; plain integers take a fast path, anything else goes through the JDK's
     * correctly rounded parsers.
     */
    static void parseRow(String line, char delim, int expected, String shapeWhat, DType dtype, ByteBuffer buf, int off,
                         Path file, long lineNo) {
        int n = line.length();
        int count = 0;
        int pos = 0;
        while (true) {
            int s;
            int e;
            boolean last;
            if (delim == ' ') {
                s = pos;
                while (s < n && Character.isWhitespace(line.charAt(s))) {
                    s++;
                }
                if (s == n) {
                    break;
                }
                e = s;
                while (e < n && !Character.isWhitespace(line.charAt(e))) {
                    e++;
                }
                pos = e;
                last = false;
            } else {
                int end = line.indexOf(delim, pos);
                last = end < 0;
                if (last) {
                    end = n;
                }
                s = pos;
                e = end;
                while (s < e && Character.isWhitespace(line.charAt(s))) {
                    s++;
                }
                while (e > s && Character.isWhitespace(line.charAt(e - 1))) {
                    e--;
                }
                pos = end + 1;
                if (s == e) {
                    if (last && count > 0) {
                        break; // one trailing delimiter
                    }
                    throw new MalformedDataException(file, lineNo, "empty value in column " + (count + 1));
                }
            }
            if (count < expected) {
                store(line, s, e, count, dtype, buf, off, file, lineNo);
            }
            count++;
            if (last) {
                break;
            }
        }
        if (count != expected) {
            throw new MalformedDataException(file, lineNo, "row has " + count + " values, " + shapeWhat + " needs " + expected);
        }
    }

    private static final long NOT_SIMPLE = Long.MIN_VALUE;

    /** A plain decimal integer of at most 18 digits with an optional sign, or NOT_SIMPLE. */
    private static long simpleInteger(String line, int s, int e) {
        int i = s;
        boolean neg = false;
        char c0 = line.charAt(i);
        if (c0 == '-' || c0 == '+') {
            neg = c0 == '-';
            i++;
        }
        if (i == e || e - i > 18) {
            return NOT_SIMPLE;
        }
        long v = 0;
        for (; i < e; i++) {
            char c = line.charAt(i);
            if (c < '0' || c > '9') {
                return NOT_SIMPLE;
            }
            v = 10 * v + (c - '0');
        }
        return neg ? -v : v;
    }

    private static void store(String line, int s, int e, int col, DType dtype, ByteBuffer buf, int off, Path file, long lineNo) {
        long v = simpleInteger(line, s, e);
        switch (dtype) {
            case FLOAT32 -> {
                float f;
                if (v != NOT_SIMPLE && Math.abs(v) <= (1 << 24)) {
                    f = v == 0 && line.charAt(s) == '-' ? -0f : (float) v; // exact
                } else {
                    f = parseFloat(line.substring(s, e), col, file, lineNo);
                }
                buf.putFloat(off + 4 * col, f);
            }
            case INT32 -> {
                long x = v != NOT_SIMPLE ? v : parseLong(line.substring(s, e), col, file, lineNo, "int32");
                if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
                    throw new MalformedDataException(file, lineNo, "value '" + line.substring(s, e) + "' in column " + (col + 1)
                            + " is out of int32 range");
                }
                buf.putInt(off + 4 * col, (int) x);
            }
            case INT64 -> buf.putLong(off + 8 * col, v != NOT_SIMPLE ? v : parseLong(line.substring(s, e), col, file, lineNo, "int64"));
            default -> throw new IllegalArgumentException("dtype must be float32, int32 or int64, got " + dtype);
        }
    }

    static float parseFloat(String t, int col, Path file, long lineNo) {
        try {
            char last = t.charAt(t.length() - 1);
            if (last == 'f' || last == 'F' || last == 'd' || last == 'D') {
                throw new NumberFormatException(); // Java's type suffixes are not numbers in a CSV file
            }
            String u = t.toLowerCase(java.util.Locale.ROOT);
            String mag = u.startsWith("-") || u.startsWith("+") ? u.substring(1) : u;
            if (mag.equals("nan")) {
                return Float.NaN;
            }
            if (mag.equals("inf") || mag.equals("infinity")) {
                return u.startsWith("-") ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY;
            }
            return Float.parseFloat(t);
        } catch (NumberFormatException e) {
            throw new MalformedDataException(file, lineNo, "cannot parse '" + t + "' in column " + (col + 1) + " as float32");
        }
    }

    /** An integer value: plain digits, or a decimal/exponent form with an exactly integral value ({@code 3.0}, {@code 1e3}). */
    static long parseLong(String t, int col, Path file, long lineNo, String type) {
        try {
            return Long.parseLong(t);
        } catch (NumberFormatException e) {
            try {
                return new BigDecimal(t).longValueExact();
            } catch (NumberFormatException | ArithmeticException e2) {
                throw new MalformedDataException(file, lineNo, "cannot parse '" + t + "' in column " + (col + 1) + " as " + type);
            }
        }
    }
}
