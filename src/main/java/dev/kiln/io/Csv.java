package dev.kiln.io;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Loads small delimited numeric tables (CSV with or without header lines, space-separated files,
 * gzip recognised) into Java arrays, to feed an {@link NDArrayIter} or to write header-less files
 * for a {@link CSVIter}. MXNet's CSVIter cannot skip a header; this is Kiln's answer for tables
 * such as scikit-learn's {@code iris.csv} (first line {@code 150,4,setosa,versicolor,virginica},
 * then four features and the class per row):
 *
 * <pre>{@code
 * Csv.Table iris = Csv.read(Path.of("iris.csv"), ',', 1);          // skip one header line
 * try (NDArrayIter it = NDArrayIter.builder()
 *         .setData(iris.select(0, 1, 2, 3).toRows())                // (150, 4)
 *         .optLabel(iris.column(4))                                 // (150,)
 *         .setBatchSize(30).optShuffle(true).optSeed(1).build()) { ... }
 *
 * iris.select(0, 1, 2, 3).write(Path.of("iris.data.csv"));          // CSVIter-ready files
 * iris.select(4).write(Path.of("iris.label.csv"));
 * }</pre>
 *
 * <p>Values are float32 (as MXNet's default); blank lines are skipped; every row must have the
 * same number of values, else a {@link MalformedDataException} names the file and line.
 * Stateless and thread-safe; tables are immutable.
 */
public final class Csv {
    private Csv() {}

    /**
     * A rectangular float32 table, row-major.
     *
     * @param rows        number of rows
     * @param cols        number of columns
     * @param values      {@code rows * cols} values, row-major (not copied: do not modify)
     * @param headerLines the lines skipped at the top of the file, verbatim
     */
    public record Table(int rows, int cols, float[] values, List<String> headerLines) {
        /** Validates the sizes. */
        public Table {
            Objects.requireNonNull(values, "values");
            if ((long) rows * cols != values.length) {
                throw new IllegalArgumentException("table of " + rows + "x" + cols + " needs " + (long) rows * cols + " values, " + values.length + " given");
            }
            headerLines = headerLines == null ? List.of() : List.copyOf(headerLines);
        }

        /** Equal when the sizes, the values (bit for bit) and the header lines are equal. */
        @Override
        public boolean equals(Object o) {
            return o instanceof Table t && t.rows == rows && t.cols == cols && Arrays.equals(t.values, values)
                    && t.headerLines.equals(headerLines);
        }

        @Override
        public int hashCode() {
            return 31 * (31 * rows + cols) + Arrays.hashCode(values);
        }

        /** {@code Table[150x5]} plus the header lines. */
        @Override
        public String toString() {
            return "Table[" + rows + "x" + cols + (headerLines.isEmpty() ? "" : ", header " + headerLines) + "]";
        }

        /** The value at row {@code r}, column {@code c}. */
        public float get(int r, int c) {
            Objects.checkIndex(r, rows);
            Objects.checkIndex(c, cols);
            return values[r * cols + c];
        }

        /** A copy of column {@code c} (negative: from the end, -1 is the last). */
        public float[] column(int c) {
            int cc = c < 0 ? cols + c : c;
            Objects.checkIndex(cc, cols);
            float[] out = new float[rows];
            for (int r = 0; r < rows; r++) {
                out[r] = values[r * cols + cc];
            }
            return out;
        }

        /** A table of the given columns, in the given order (negative: from the end). */
        public Table select(int... columns) {
            int[] cs = columns.clone();
            for (int i = 0; i < cs.length; i++) {
                cs[i] = cs[i] < 0 ? cols + cs[i] : cs[i];
                Objects.checkIndex(cs[i], cols);
            }
            float[] out = new float[rows * cs.length];
            for (int r = 0; r < rows; r++) {
                for (int i = 0; i < cs.length; i++) {
                    out[r * cs.length + i] = values[r * cols + cs[i]];
                }
            }
            return new Table(rows, cs.length, out, headerLines);
        }

        /** Columns {@code [from, to)}. */
        public Table columns(int from, int to) {
            if (from < 0 || from > to || to > cols) {
                throw new IndexOutOfBoundsException("columns [" + from + ", " + to + ") of a table with " + cols);
            }
            int[] cs = new int[to - from];
            for (int i = 0; i < cs.length; i++) {
                cs[i] = from + i;
            }
            return select(cs);
        }

        /** The rows as Java arrays. */
        public float[][] toRows() {
            float[][] out = new float[rows][];
            for (int r = 0; r < rows; r++) {
                out[r] = Arrays.copyOfRange(values, r * cols, (r + 1) * cols);
            }
            return out;
        }

        /** A new float32 cpu(0) array of shape {@code (rows, cols)}; the caller owns it. */
        public NDArray toNDArray() {
            return NDArray.create(values, rows, cols);
        }

        /**
         * Writes the table as header-less comma-separated text, one row per line (integral
         * values without a decimal point), which {@link CSVIter} reads back exactly.
         */
        public void write(Path file) throws IOException {
            try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
                StringBuilder b = new StringBuilder();
                for (int r = 0; r < rows; r++) {
                    b.setLength(0);
                    for (int c = 0; c < cols; c++) {
                        if (c > 0) {
                            b.append(',');
                        }
                        float v = values[r * cols + c];
                        if (v == Math.rint(v) && Math.abs(v) < 1e7f && Float.floatToRawIntBits(v) != 0x80000000) {
                            b.append((long) v);
                        } else {
                            b.append(v);
                        }
                    }
                    b.append('\n');
                    w.append(b);
                }
            }
        }
    }

    /** Reads a comma-separated file without header. */
    public static Table read(Path file) throws IOException {
        return read(file, ',', 0);
    }

    /**
     * Reads a delimited numeric table.
     *
     * @param delimiter the value separator; a space means "any run of spaces or tabs"
     * @param skipLines header lines to skip at the top (kept in {@link Table#headerLines()})
     * @throws IOException            when the file cannot be read
     * @throws MalformedDataException for a non-numeric value or rows of different lengths
     */
    public static Table read(Path file, char delimiter, int skipLines) throws IOException {
        List<String> header = new ArrayList<>();
        if (skipLines > 0) {
            try (var r = new java.io.BufferedReader(new java.io.InputStreamReader(TextRows.open(file), StandardCharsets.UTF_8))) {
                for (int i = 0; i < skipLines; i++) {
                    String l = r.readLine();
                    if (l == null) {
                        break;
                    }
                    header.add(l);
                }
            }
        }
        try (TextRows rows = new TextRows(file, skipLines, "Csv")) {
            int cols = -1;
            int n = 0;
            ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
            String line;
            while ((line = rows.next()) != null) {
                int count = TextRows.split(line, delimiter, rows.file(), rows.line()).size();
                if (cols < 0) {
                    cols = count;
                } else if (count != cols) {
                    throw new MalformedDataException(rows.file(), rows.line(), "row has " + count + " values, the first row has " + cols);
                }
                if (buf.remaining() < 4 * cols) {
                    ByteBuffer bigger = ByteBuffer.allocate((int) Math.min(Integer.MAX_VALUE - 16, Math.max(2L * buf.capacity(), buf.position() + 4L * cols)))
                            .order(ByteOrder.LITTLE_ENDIAN);
                    buf.flip();
                    bigger.put(buf);
                    buf = bigger;
                }
                TextRows.parseRow(line, delimiter, cols, "the table", DType.FLOAT32, buf, buf.position(), rows.file(), rows.line());
                buf.position(buf.position() + 4 * cols);
                n++;
            }
            if (cols < 0) {
                cols = 0;
            }
            float[] values = new float[n * cols];
            buf.flip();
            buf.asFloatBuffer().get(values);
            return new Table(n, cols, values, header);
        }
    }
}
