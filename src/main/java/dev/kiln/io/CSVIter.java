package dev.kiln.io;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.Shape;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Batches from CSV text files, MXNet's native {@code CSVIter} ({@code src/io/iter_csv.cc} behind
 * {@code BatchLoader}).
 *
 * <pre>{@code
 * try (CSVIter it = CSVIter.builder()
 *         .setDataCsv(Path.of("iris.data.csv")).setDataShape(4)
 *         .optLabelCsv(Path.of("iris.label.csv"))
 *         .setBatchSize(30)
 *         .build()) { ... }
 * }</pre>
 *
 * <p>Every non-blank line of {@code data_csv} (a file, or every file of a directory in name
 * order; gzip is recognised) is one example: comma-separated numbers, exactly
 * {@code prod(data_shape)} of them. {@code label_csv} gives the labels row by row
 * ({@code prod(label_shape)} values each); without it every label is one 0 (whatever
 * {@code label_shape} says, as in MXNet). Values are parsed as {@code dtype} (float32 by default,
 * int32 or int64; data and label share it). Batches hold data {@code (B, data_shape...)} and
 * label {@code (B, label_shape...)}, where a one-element label ({@code label_shape} (1,) or
 * (1, 1)) is returned as {@code (B,)} (as MXNet's C API does).
 *
 * <p>The last batch of an epoch (spec 6.5):
 * <ul>
 *   <li>{@code round_batch = true} (default): it is completed with rows from the beginning of the
 *       data and {@code pad} tells how many; the next {@link #reset()} <b>does not rewind</b>: the
 *       next epoch continues right after the wrapped rows (5 rows, batch 2: {@code [1,2] [3,4]
 *       [5,1] pad 1}, then {@code [2,3] [4,5]}, then again from row 1).</li>
 *   <li>{@code round_batch = false}: it is returned with {@code pad = B - valid}, the padded
 *       slots holding the values of the previous batch (MXNet reuses its batch buffer).</li>
 * </ul>
 * {@link DataBatch#index()} holds each example's 0-based row number since the last rewind.
 *
 * <p>Unlike MXNet, malformed input is an error, not a silent 0: a value that does not parse as
 * {@code dtype}, a row of the wrong length, or label and data files of different lengths raise a
 * {@link MalformedDataException} naming the file and line. MXNet's CSVIter has no header
 * support; {@link Builder#optSkipLines(int)} skips header lines at the top of every file (or load
 * a table with {@link Csv} and use an {@link NDArrayIter}).
 *
 * <p>Ownership: each batch holds new cpu(0) arrays owned by the caller. The iterator streams the
 * files (it holds one open reader per file set, closed by {@link #close()}); it does not prefetch
 * (MXNet's {@code prefetch_buffer}); wrap it in a {@link PrefetchingIter} to read on a background
 * thread. {@link Builder#build()} throws {@link IOException} when a file is missing; a read error
 * later surfaces as {@link java.io.UncheckedIOException}.
 *
 * <p>Thread-safety: one thread at a time.
 */
public final class CSVIter extends FixedDescIter {
    private final TextRows dataRows;
    private final TextRows labelRows;
    private final long[] dataShape;
    private final long[] labelShape;
    private final int dataSize;
    private final int labelSize;
    private final int batchSize;
    private final boolean roundBatch;
    private final DType dtype;
    private final char delimiter;

    // BatchLoader state: the buffers persist across batches (stale slots under round_batch=false)
    private final ByteBuffer dataBuf;
    private final ByteBuffer labelBuf;
    private final long[] index;
    private int numOverflow;
    private long instCounter;
    private int pad;
    private boolean prepared;
    private boolean available;

    private CSVIter(Builder b) throws IOException {
        Objects.requireNonNull(b.dataCsv, "CSVIter data_csv");
        Objects.requireNonNull(b.dataShape, "CSVIter data_shape");
        if (b.batchSize < 1) {
            throw new IllegalArgumentException("CSVIter batch_size must be >= 1, got " + b.batchSize);
        }
        if (b.dtype != DType.FLOAT32 && b.dtype != DType.INT32 && b.dtype != DType.INT64) {
            throw new IllegalArgumentException("CSVIter dtype must be float32, int32 or int64, got " + b.dtype);
        }
        this.dataShape = checkShape(b.dataShape, "data_shape");
        this.labelShape = checkShape(b.labelShape, "label_shape");
        this.dataSize = (int) new Shape(dataShape).size();
        this.labelSize = (int) new Shape(labelShape).size();
        this.batchSize = b.batchSize;
        this.roundBatch = b.roundBatch;
        this.dtype = b.dtype;
        this.delimiter = b.delimiter;
        long db = (long) dataSize * dtype.bytes() * batchSize;
        long lb = (long) (b.labelCsv == null ? 1 : labelSize) * dtype.bytes() * batchSize;
        if (db > Integer.MAX_VALUE - 16 || lb > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("CSVIter: a batch of " + batchSize + " is larger than 2^31 bytes");
        }
        this.dataRows = new TextRows(b.dataCsv, b.skipLines, "CSVIter data_csv");
        TextRows lr = null;
        if (b.labelCsv != null) {
            try {
                lr = new TextRows(b.labelCsv, b.skipLines, "CSVIter label_csv");
            } catch (IOException | RuntimeException e) {
                dataRows.close();
                throw e;
            }
        }
        this.labelRows = lr;
        // MXNet's C API returns a (B, 1, ...) label as (B,); a dummy label (no label_csv) is one 0 per example
        long[] batchLabelShape = labelSize == 1 || b.labelCsv == null ? new long[] {batchSize} : prepend(batchSize, labelShape);
        describe(List.of(new DataDesc(b.dataName, prepend(batchSize, dataShape), dtype, DataDesc.DEFAULT_LAYOUT)),
                List.of(new DataDesc(b.labelName, batchLabelShape, dtype, DataDesc.DEFAULT_LAYOUT)));
        this.dataBuf = ByteBuffer.allocateDirect((int) db).order(ByteOrder.LITTLE_ENDIAN);
        this.labelBuf = ByteBuffer.allocateDirect((int) lb).order(ByteOrder.LITTLE_ENDIAN);
        this.index = new long[batchSize];
    }

    private static long[] checkShape(long[] s, String what) {
        if (s.length == 0) {
            throw new IllegalArgumentException("CSVIter " + what + " must have at least one dimension");
        }
        for (long d : s) {
            if (d < 1) {
                throw new IllegalArgumentException("CSVIter " + what + " " + DataDesc.shapeString(s) + " has a dimension < 1");
            }
        }
        if (new Shape(s).size() > Integer.MAX_VALUE / 8) {
            throw new IllegalArgumentException("CSVIter " + what + " " + DataDesc.shapeString(s) + " is too large");
        }
        return s.clone();
    }

    private static long[] prepend(long first, long[] rest) {
        long[] out = new long[rest.length + 1];
        out[0] = first;
        System.arraycopy(rest, 0, out, 1, rest.length);
        return out;
    }

    /** A builder; see the class documentation. */
    public static Builder builder() {
        return new Builder();
    }

    // ---- the per-example source (MXNet's CSVIter) -----------------------------------------------

    /** Reads the next example into slot {@code slot}; false at the end of the data. */
    private boolean readExample(int slot) {
        String line = dataRows.next();
        if (line == null) {
            if (labelRows != null && labelRows.next() != null) {
                throw new MalformedDataException(labelRows.file(), labelRows.line(), "label_csv has more rows than data_csv");
            }
            return false;
        }
        TextRows.parseRow(line, delimiter, dataSize, "data_shape " + DataDesc.shapeString(dataShape), dtype, dataBuf,
                slot * dataSize * dtype.bytes(), dataRows.file(), dataRows.line());
        if (labelRows != null) {
            String l = labelRows.next();
            if (l == null) {
                throw new MalformedDataException(dataRows.file(), dataRows.line(), "label_csv has fewer rows than data_csv (no label for this row)");
            }
            TextRows.parseRow(l, delimiter, labelSize, "label_shape " + DataDesc.shapeString(labelShape), dtype, labelBuf,
                    slot * labelSize * dtype.bytes(), labelRows.file(), labelRows.line());
        }
        index[slot] = instCounter++;
        return true;
    }

    private void rewindSource() {
        dataRows.rewind();
        if (labelRows != null) {
            labelRows.rewind();
        }
        instCounter = 0;
    }

    // ---- BatchLoader -----------------------------------------------------------------------------

    /** MXNet's {@code BatchLoader::Next}. */
    private boolean loadBatch() {
        pad = 0;
        if (numOverflow != 0) {
            return false; // the wrapped batch ended this epoch; wait for reset()
        }
        int top = 0;
        while (readExample(top)) {
            if (++top >= batchSize) {
                return true;
            }
        }
        if (top == 0) {
            return false;
        }
        if (roundBatch) {
            numOverflow = 0;
            rewindSource();
            for (; top < batchSize; ++top, ++numOverflow) {
                if (!readExample(top)) {
                    // fewer rows than the batch needs: wrap again (MXNet stops with an error)
                    rewindSource();
                    if (!readExample(top)) {
                        throw new IllegalStateException("CSVIter: data_csv has no rows");
                    }
                }
            }
            pad = numOverflow;
        } else {
            pad = batchSize - top;
        }
        return true;
    }

    @Override
    public boolean hasNext() {
        checkOpen();
        if (!prepared) {
            available = loadBatch();
            prepared = true;
        }
        return available;
    }

    @Override
    public DataBatch next() {
        if (!hasNext()) {
            throw endOfEpoch();
        }
        prepared = false;
        return hostBatch(d -> d.set(dataBuf.duplicate().clear()), l -> l.set(labelBuf.duplicate().clear()), pad,
                Arrays.copyOf(index, batchSize));
    }

    /**
     * MXNet's {@code BatchLoader::BeforeFirst}: rewinds the files, except right after a
     * round_batch wrap, when the next epoch continues after the wrapped rows.
     */
    @Override
    public void reset() {
        checkOpen();
        if (!roundBatch || numOverflow == 0) {
            rewindSource();
        } else {
            numOverflow = 0;
        }
        prepared = false;
    }

    @Override
    public int batchSize() {
        return batchSize;
    }

    /** Closes the files. Idempotent. */
    @Override
    public void close() {
        if (markClosed()) {
            dataRows.close();
            if (labelRows != null) {
                labelRows.close();
            }
        }
    }

    /**
     * Builds a {@link CSVIter}. Required: {@code data_csv}, {@code data_shape},
     * {@code batch_size}. Not thread-safe.
     */
    public static final class Builder {
        private Path dataCsv;
        private long[] dataShape;
        private Path labelCsv;
        private long[] labelShape = {1};
        private int batchSize;
        private boolean roundBatch = true;
        private DType dtype = DType.FLOAT32;
        private String dataName = "data";
        private String labelName = "softmax_label";
        private int skipLines;
        private char delimiter = ',';

        private Builder() {}

        /** The data file, or a directory whose files are read in name order. */
        public Builder setDataCsv(Path path) {
            this.dataCsv = Objects.requireNonNull(path, "data_csv");
            return this;
        }

        /** The data file or directory as a path string. */
        public Builder setDataCsv(String path) {
            return setDataCsv(Path.of(path));
        }

        /** Shape of one example; each row must hold exactly {@code prod(shape)} values. */
        public Builder setDataShape(long... shape) {
            this.dataShape = shape.clone();
            return this;
        }

        /** The label file or directory; null (or MXNet's {@code "NULL"} string) means every label is 0. */
        public Builder optLabelCsv(Path path) {
            this.labelCsv = path;
            return this;
        }

        /** The label file as a path string; {@code "NULL"} or null means none (MXNet's default). */
        public Builder optLabelCsv(String path) {
            return optLabelCsv(path == null || path.equals("NULL") ? null : Path.of(path));
        }

        /** Shape of one label (default {@code (1,)}, which batches as {@code (B,)}). */
        public Builder optLabelShape(long... shape) {
            this.labelShape = shape.clone();
            return this;
        }

        /** Examples per batch (required). */
        public Builder setBatchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        /** Whether the last batch wraps to the start (default true); see the class documentation. */
        public Builder optRoundBatch(boolean roundBatch) {
            this.roundBatch = roundBatch;
            return this;
        }

        /** Element type of data and label: {@link DType#FLOAT32} (default), INT32 or INT64. */
        public Builder optDType(DType dtype) {
            this.dtype = Objects.requireNonNull(dtype, "dtype");
            return this;
        }

        /** Element type by MXNet name: {@code float32}, {@code int32} or {@code int64}. */
        public Builder optDType(String dtype) {
            return optDType(DType.fromName(dtype));
        }

        /** Name of the data input (default {@code data}). */
        public Builder optDataName(String name) {
            this.dataName = Objects.requireNonNull(name, "data_name");
            return this;
        }

        /** Name of the label input (default {@code softmax_label}). */
        public Builder optLabelName(String name) {
            this.labelName = Objects.requireNonNull(name, "label_name");
            return this;
        }

        /** Kiln extension: lines to skip at the top of every data and label file (headers); default 0. */
        public Builder optSkipLines(int lines) {
            this.skipLines = lines;
            return this;
        }

        /**
         * Kiln extension: the value separator (default {@code ','}); a space means "any run of
         * spaces or tabs".
         */
        public Builder optDelimiter(char delimiter) {
            this.delimiter = delimiter;
            return this;
        }

        /**
         * Builds the iterator.
         *
         * @throws IOException when a file or directory does not exist (or a directory is empty)
         */
        public CSVIter build() throws IOException {
            return new CSVIter(this);
        }
    }
}
