package dev.kiln.io;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Batches over in-memory arrays, MXNet's {@code mx.io.NDArrayIter}.
 *
 * <pre>{@code
 * try (NDArrayIter it = NDArrayIter.builder()
 *         .setData(x)                      // NDArray (N, ...) or float[][] rows, or several named inputs
 *         .optLabel(y)                     // optional
 *         .setBatchSize(32)
 *         .optShuffle(true).optSeed(42)    // reshuffled at every reset, reproducibly
 *         .optLastBatchHandle("pad")       // "pad" (default) | "discard" | "roll_over"
 *         .build()) {
 *     for (DataBatch b : it) { try (b) { ... } }
 * }
 * }</pre>
 *
 * <p>MXNet semantics (spec 6.2):
 * <ul>
 *   <li>Inputs: one array is named {@code dataName} ({@code "data"}); a list of n &gt; 1 arrays
 *       is named {@code _0_data}, {@code _1_data}, ...; a map is used as given. The inputs are
 *       then <b>sorted by name</b> (as Python's {@code sorted}, so {@code _10_data} sorts before
 *       {@code _1_data}). Labels likewise with {@code labelName} ({@code "softmax_label"}); they
 *       are optional. Java arrays ({@code float[]}, {@code double[]}, {@code int[]}) become
 *       float32, as {@code nd.array} makes NumPy input float32; NDArrays keep their dtype.</li>
 *   <li>Examples are taken along the batch axis, the position of {@code 'N'} in the layout
 *       ({@code "NCHW"} by default, so axis 0). {@link #provideData()} reports each shape with
 *       that axis replaced by the batch size.</li>
 *   <li>{@code last_batch_handle}: {@code pad} fills the last batch by wrapping to the start
 *       (tiling the data when the pad exceeds it) and reports {@code pad}; {@code discard}
 *       drops an incomplete last batch; {@code roll_over} keeps the incomplete tail and, after
 *       {@link #reset()}, serves it at the front of the first batch of the next epoch, whose
 *       {@code pad} is the tail's length although every example is real (MXNet's documented
 *       quirk; do not use roll_over for prediction). {@link #hardReset()} drops the tail.</li>
 *   <li>Shuffling happens at construction and at every reset and hard reset, and the data are
 *       re-permuted relative to the previous order, exactly as MXNet's
 *       {@code np.random.shuffle(self.idx); data = data[idx]}. The generator is the iterator's
 *       own MT19937 seeded with {@link Builder#optSeed(long)}: the orders equal MXNet's after
 *       {@code np.random.seed(seed)}. Without a seed a random one is drawn.</li>
 * </ul>
 *
 * <p>Ownership: the builder <b>copies</b> the input arrays into Java memory when
 * {@link Builder#build()} runs; the caller keeps (and closes) its arrays, and later changes to
 * them are not seen. Each {@link #next()} gathers the rows with bulk copies into a direct buffer
 * and returns a new batch with new arrays, on the context of the input array (cpu(0) for Java
 * arrays), which the caller closes. The iterator holds no native memory.
 *
 * <p>Thread-safety: one thread at a time.
 */
public final class NDArrayIter extends FixedDescIter {
    /** How the last, incomplete batch of an epoch is handled. */
    public enum LastBatchHandle {
        /** Wrap to the start of the data to fill the batch; {@code pad} tells how many were added. */
        PAD("pad"),
        /** Drop the incomplete batch. */
        DISCARD("discard"),
        /** Keep the incomplete tail for the first batch of the next epoch. */
        ROLL_OVER("roll_over");

        private final String mxName;

        LastBatchHandle(String mxName) {
            this.mxName = mxName;
        }

        /** MXNet's name: {@code pad}, {@code discard} or {@code roll_over}. */
        public String mxName() {
            return mxName;
        }

        /** Parses MXNet's name (case-insensitive). */
        public static LastBatchHandle fromString(String s) {
            for (LastBatchHandle h : values()) {
                if (h.mxName.equalsIgnoreCase(s)) {
                    return h;
                }
            }
            throw new IllegalArgumentException("last_batch_handle must be 'pad', 'discard' or 'roll_over', got '" + s + "'");
        }
    }

    private static final long CHUNK_BYTES = 1L << 30;

    private final List<Source> data;
    private final List<Source> label;
    private final int batchSize;
    private final int numData;
    private final boolean shuffle;
    private final Mt19937 rng;
    private final LastBatchHandle lastBatchHandle;
    private final String layout;

    /** MXNet's in-place shuffled index vector and the resulting order of the original rows. */
    private final int[] idx;
    private int[] order;
    private long cursor;
    private int[] cachedTail;
    private boolean prepared;
    private boolean available;

    /** {@code NDArrayIter(data, label, batchSize)}: no shuffle, pad mode. {@code label} may be null. */
    public NDArrayIter(NDArray data, NDArray label, int batchSize) {
        this(builder().setData(data).optLabel(label).setBatchSize(batchSize));
    }

    /**
     * {@code NDArrayIter(data, label, batchSize, shuffle, lastBatchHandle)} with a random seed.
     * {@code label} may be null.
     */
    public NDArrayIter(NDArray data, NDArray label, int batchSize, boolean shuffle, String lastBatchHandle) {
        this(builder().setData(data).optLabel(label).setBatchSize(batchSize).optShuffle(shuffle)
                .optLastBatchHandle(lastBatchHandle));
    }

    /** Named inputs (sorted by name); {@code label} may be null or empty. */
    public NDArrayIter(Map<String, NDArray> data, Map<String, NDArray> label, int batchSize, boolean shuffle,
                       String lastBatchHandle) {
        this(builder().setData(data).optLabel(label).setBatchSize(batchSize).optShuffle(shuffle)
                .optLastBatchHandle(lastBatchHandle));
    }

    private NDArrayIter(Builder b) {
        if (b.data.isEmpty()) {
            throw new IllegalArgumentException("NDArrayIter needs data (setData/addData)");
        }
        if (b.batchSize < 1) {
            throw new IllegalArgumentException("NDArrayIter batch_size must be >= 1, got " + b.batchSize);
        }
        this.batchSize = b.batchSize;
        this.layout = b.layout == null ? DataDesc.DEFAULT_LAYOUT : b.layout;
        int axis = DataDesc.batchAxis(layout);
        if (axis < 0) {
            throw new IllegalArgumentException("NDArrayIter layout '" + layout + "' has no batch axis 'N'");
        }
        this.lastBatchHandle = b.lastBatchHandle;
        this.shuffle = b.shuffle;
        long seed = b.seed != null ? b.seed : ThreadLocalRandom.current().nextLong();
        this.rng = new Mt19937(seed);

        List<Input> din = resolve(b.data, b.dataNamed, b.dataName, "data");
        List<Input> lin = resolve(b.label, b.labelNamed, b.labelName, "label");
        long n = -1;
        String first = null;
        for (Input in : concat(din, lin)) {
            if (in.shape.length <= axis) {
                throw new IllegalArgumentException("NDArrayIter input '" + in.name + "' has shape " + DataDesc.shapeString(in.shape)
                        + ", which has no batch axis " + axis + " (layout " + layout + ")");
            }
            if (n < 0) {
                n = in.shape[axis];
                first = in.name;
            } else if (in.shape[axis] != n) {
                throw new IllegalArgumentException("NDArrayIter input '" + in.name + "' has " + in.shape[axis] + " examples along axis "
                        + axis + ", '" + first + "' has " + n);
            }
        }
        if (n == 0) {
            throw new IllegalArgumentException("NDArrayIter input '" + first + "' has no examples");
        }
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("NDArrayIter supports at most 2^31 examples, '" + first + "' has " + n);
        }
        this.numData = (int) n;
        if (lastBatchHandle == LastBatchHandle.ROLL_OVER && batchSize > numData) {
            throw new IllegalArgumentException("NDArrayIter roll_over needs batch_size (" + batchSize
                    + ") <= number of examples (" + numData + ")");
        }
        List<Source> ds = new ArrayList<>();
        for (Input in : din) {
            ds.add(new Source(in, axis, batchSize));
        }
        List<Source> ls = new ArrayList<>();
        for (Input in : lin) {
            ls.add(new Source(in, axis, batchSize));
        }
        this.data = Collections.unmodifiableList(ds);
        this.label = Collections.unmodifiableList(ls);
        describe(descs(data), descs(label));

        this.idx = new int[numData];
        this.order = new int[numData];
        for (int i = 0; i < numData; i++) {
            idx[i] = i;
            order[i] = i;
        }
        this.cursor = -batchSize;
        reset();
    }

    /** A builder; see the class documentation. */
    public static Builder builder() {
        return new Builder();
    }

    // ---- DataIter ------------------------------------------------------------------------------

    @Override
    public boolean hasNext() {
        checkOpen();
        if (!prepared) {
            cursor += batchSize;
            available = computeAvailable();
            prepared = true;
        }
        return available;
    }

    private boolean computeAvailable() {
        if (cursor >= numData) {
            return false;
        }
        if (isRolledBatch() || (lastBatchHandle == LastBatchHandle.PAD && cursor + batchSize > numData)) {
            return true;
        }
        if (cursor + batchSize > numData) {
            // incomplete last batch under discard / roll_over: cache it (MXNet caches for both)
            cachedTail = Arrays.copyOfRange(order, (int) cursor, numData);
            return false;
        }
        return true;
    }

    private boolean isRolledBatch() {
        return lastBatchHandle == LastBatchHandle.ROLL_OVER && -batchSize < cursor && cursor < 0;
    }

    @Override
    public DataBatch next() {
        if (!hasNext()) {
            throw endOfEpoch();
        }
        prepared = false;
        int[] rows = new int[batchSize];
        int pad;
        if (isRolledBatch()) {
            if (cachedTail == null) {
                throw new IllegalStateException("NDArrayIter roll_over: next epoch should have cached data");
            }
            int t = cachedTail.length;
            System.arraycopy(cachedTail, 0, rows, 0, t);
            System.arraycopy(order, 0, rows, t, batchSize - t);
            cachedTail = null;
            pad = (int) -cursor;
        } else if (lastBatchHandle == LastBatchHandle.PAD && cursor + batchSize > numData) {
            for (int j = 0; j < batchSize; j++) {
                rows[j] = order[(int) ((cursor + j) % numData)];
            }
            pad = (int) (cursor + batchSize - numData);
        } else {
            System.arraycopy(order, (int) cursor, rows, 0, batchSize);
            pad = 0;
        }
        List<NDArray> d = new ArrayList<>(data.size());
        List<NDArray> l = new ArrayList<>(label.size());
        try {
            for (Source s : data) {
                d.add(s.batch(rows));
            }
            for (Source s : label) {
                l.add(s.batch(rows));
            }
        } catch (RuntimeException e) {
            d.forEach(NDArray::close);
            l.forEach(NDArray::close);
            throw e;
        }
        return new DataBatch(d, l, pad, null, null, provideData(), provideLabel());
    }

    /**
     * Starts the next epoch: reshuffles (when enabled) and rewinds; under roll_over, when the
     * previous epoch ended with an incomplete tail, the next epoch starts with it.
     */
    @Override
    public void reset() {
        checkOpen();
        if (shuffle) {
            shuffleData();
        }
        if (lastBatchHandle == LastBatchHandle.ROLL_OVER && numData - batchSize < cursor && cursor < numData) {
            cursor = cursor - numData - batchSize;
        } else {
            cursor = -batchSize;
        }
        prepared = false;
    }

    /** MXNet's {@code hard_reset}: reshuffles (when enabled), rewinds and drops a rolled-over tail. */
    public void hardReset() {
        checkOpen();
        if (shuffle) {
            shuffleData();
        }
        cursor = -batchSize;
        cachedTail = null;
        prepared = false;
    }

    private void shuffleData() {
        rng.numpyShuffle(idx);
        int[] next = new int[numData];
        for (int i = 0; i < numData; i++) {
            next[i] = order[idx[i]];
        }
        order = next;
    }

    @Override
    public int batchSize() {
        return batchSize;
    }

    /** Number of examples. */
    public int numData() {
        return numData;
    }

    /** The last-batch policy. */
    public LastBatchHandle lastBatchHandle() {
        return lastBatchHandle;
    }

    /** The layout of every input (its {@code 'N'} is the batch axis). */
    public String layout() {
        return layout;
    }

    /** Drops the copied data; the iterator can no longer be used. Idempotent. */
    @Override
    public void close() {
        if (markClosed()) {
            for (Source s : data) {
                s.release();
            }
            for (Source s : label) {
                s.release();
            }
        }
    }

    private List<DataDesc> descs(List<Source> sources) {
        List<DataDesc> out = new ArrayList<>(sources.size());
        for (Source s : sources) {
            out.add(new DataDesc(s.name, s.batchShape(batchSize), s.dtype, layout));
        }
        return Collections.unmodifiableList(out);
    }

    // ---- inputs ----------------------------------------------------------------------------------

    /** One input before copying: an NDArray or float32 values with a shape. */
    private record Input(String name, NDArray array, float[] values, long[] shape) {}

    private static List<Input> concat(List<Input> a, List<Input> b) {
        List<Input> out = new ArrayList<>(a);
        out.addAll(b);
        return out;
    }

    /** MXNet's {@code _init_data}: names positional inputs, then sorts by name. */
    private static List<Input> resolve(List<Input> inputs, boolean named, String defaultName, String what) {
        List<Input> out = new ArrayList<>();
        if (!named && inputs.size() == 1) {
            Input in = inputs.get(0);
            out.add(new Input(defaultName, in.array, in.values, in.shape));
        } else if (!named) {
            for (int i = 0; i < inputs.size(); i++) {
                Input in = inputs.get(i);
                out.add(new Input("_" + i + "_" + defaultName, in.array, in.values, in.shape));
            }
        } else {
            out.addAll(inputs);
        }
        out.sort((x, y) -> x.name.compareTo(y.name));
        for (int i = 1; i < out.size(); i++) {
            if (out.get(i).name.equals(out.get(i - 1).name)) {
                throw new IllegalArgumentException("NDArrayIter: two " + what + " inputs are named '" + out.get(i).name + "'");
            }
        }
        return out;
    }

    /**
     * One input copied into Java memory, batch-major: row r holds every element of example r
     * (in the order of the axes before the batch axis, then the axes after it), so a batch is
     * gathered with one bulk copy per row (per row and outer index when the batch axis is not 0).
     */
    private static final class Source {
        final String name;
        final DType dtype;
        final Context ctx;
        final long[] shape;
        final int axis;
        final long outer;       // product of the dims before the batch axis
        final int innerBytes;   // bytes of one example's slice after the batch axis
        final int rowBytes;     // outer * innerBytes
        final int rowsPerChunk;
        byte[][] chunks;
        private final ByteBuffer buf; // the batch staging buffer (direct, reused)

        Source(Input in, int axis, int batchSize) {
            this.name = in.name;
            this.dtype = in.array != null ? in.array.dtype() : DType.FLOAT32;
            this.ctx = in.array != null ? in.array.context() : Context.cpu();
            this.shape = in.shape.clone();
            this.axis = axis;
            long o = 1;
            for (int i = 0; i < axis; i++) {
                o *= shape[i];
            }
            long inner = dtype.bytes();
            for (int i = axis + 1; i < shape.length; i++) {
                inner *= shape[i];
            }
            long row = o * inner;
            if (row > CHUNK_BYTES) {
                throw new IllegalArgumentException("NDArrayIter input '" + name + "': one example takes " + row + " bytes (at most 2^30)");
            }
            long batchBytes = row * batchSize;
            if (batchBytes > Integer.MAX_VALUE - 16) {
                throw new IllegalArgumentException("NDArrayIter input '" + name + "': a batch of " + batchSize + " takes " + batchBytes
                        + " bytes (at most 2^31)");
            }
            this.outer = o;
            this.innerBytes = (int) inner;
            this.rowBytes = (int) row;
            long n = shape[axis];
            this.rowsPerChunk = (int) Math.max(1, Math.min(n, CHUNK_BYTES / Math.max(1, row)));
            this.buf = ByteBuffer.allocateDirect((int) batchBytes).order(ByteOrder.LITTLE_ENDIAN);
            load(in, n);
        }

        private void load(Input in, long n) {
            NDArray flat = in.array != null ? in.array.reshape(in.array.size()) : null;
            try {
                int nChunks = (int) ((n + rowsPerChunk - 1) / rowsPerChunk);
                chunks = new byte[nChunks][];
                int eb = dtype.bytes();
                long innerElems = innerBytes / eb;
                for (int k = 0; k < nChunks; k++) {
                    long r0 = (long) k * rowsPerChunk;
                    int rows = (int) Math.min(rowsPerChunk, n - r0);
                    byte[] c = new byte[rows * rowBytes];
                    if (outer == 1) {
                        read(in, flat, r0 * innerElems, (int) (rows * innerElems), c, 0);
                    } else {
                        byte[] tmp = new byte[rows * innerBytes];
                        for (long o = 0; o < outer; o++) {
                            read(in, flat, (o * n + r0) * innerElems, (int) (rows * innerElems), tmp, 0);
                            for (int r = 0; r < rows; r++) {
                                System.arraycopy(tmp, r * innerBytes, c, (int) (r * (long) rowBytes + o * innerBytes), innerBytes);
                            }
                        }
                    }
                    chunks[k] = c;
                }
            } finally {
                if (flat != null) {
                    flat.close();
                }
            }
        }

        /** Reads {@code count} elements starting at flat element {@code off} into {@code dst}. */
        private void read(Input in, NDArray flat, long off, int count, byte[] dst, int dstOff) {
            if (count == 0) {
                return;
            }
            ByteBuffer bb = ByteBuffer.wrap(dst, dstOff, count * dtype.bytes()).order(ByteOrder.LITTLE_ENDIAN);
            if (flat != null) {
                try (NDArray piece = flat.slice(off, off + count)) {
                    piece.copyTo(bb);
                }
            } else {
                bb.asFloatBuffer().put(in.values, (int) off, count);
            }
        }

        long[] batchShape(int count) {
            long[] s = shape.clone();
            s[axis] = count;
            return s;
        }

        /** A new detached array holding the given rows (original example ids), in order. */
        NDArray batch(int[] rows) {
            if (chunks == null) {
                throw new IllegalStateException("NDArrayIter is closed");
            }
            int count = rows.length;
            ByteBuffer out = buf;
            out.clear();
            if (outer == 1) {
                for (int r : rows) {
                    out.put(chunks[r / rowsPerChunk], (r % rowsPerChunk) * rowBytes, rowBytes);
                }
            } else {
                for (int j = 0; j < count; j++) {
                    int r = rows[j];
                    byte[] c = chunks[r / rowsPerChunk];
                    int base = (r % rowsPerChunk) * rowBytes;
                    for (long o = 0; o < outer; o++) {
                        out.put((int) ((o * count + j) * innerBytes), c, (int) (base + o * innerBytes), innerBytes);
                    }
                }
            }
            out.position(0).limit(count * rowBytes);
            return filled(new Shape(batchShape(count)), dtype, ctx, a -> a.set(out));
        }

        void release() {
            chunks = null;
        }
    }

    // ---- builder ---------------------------------------------------------------------------------

    /**
     * Builds an {@link NDArrayIter}. Data are required ({@code setData} or {@code addData});
     * everything else is optional with MXNet's defaults (batch size 1, no shuffle, {@code pad},
     * names {@code data}/{@code softmax_label}, layout {@code NCHW}). Not thread-safe.
     */
    public static final class Builder {
        private final List<Input> data = new ArrayList<>();
        private boolean dataNamed;
        private final List<Input> label = new ArrayList<>();
        private boolean labelNamed;
        private int batchSize = 1;
        private boolean shuffle;
        private Long seed;
        private LastBatchHandle lastBatchHandle = LastBatchHandle.PAD;
        private String dataName = "data";
        private String labelName = "softmax_label";
        private String layout = DataDesc.DEFAULT_LAYOUT;

        private Builder() {}

        // data

        /** One data array (named {@code dataName}). The array is copied by {@link #build()}; the caller keeps it. */
        public Builder setData(NDArray array) {
            data.clear();
            data.add(fromArray(null, array));
            dataNamed = false;
            return this;
        }

        /** Several data arrays, named {@code _0_data}, {@code _1_data}, ... (one array: {@code data}). */
        public Builder setData(List<NDArray> arrays) {
            data.clear();
            for (NDArray a : arrays) {
                data.add(fromArray(null, a));
            }
            dataNamed = false;
            return this;
        }

        /** Named data arrays (served sorted by name). */
        public Builder setData(Map<String, NDArray> arrays) {
            data.clear();
            arrays.forEach((k, v) -> data.add(fromArray(k, v)));
            dataNamed = true;
            return this;
        }

        /** Data from rows of equal length: shape (rows.length, rows[0].length), float32. */
        public Builder setData(float[][] rows) {
            data.clear();
            data.add(fromRows(null, rows));
            dataNamed = false;
            return this;
        }

        /** Data from row-major float32 values with the given shape (batch axis included). */
        public Builder setData(float[] values, long... shape) {
            data.clear();
            data.add(fromValues(null, values, shape));
            dataNamed = false;
            return this;
        }

        /** Data from row-major values converted to float32 (as MXNet converts NumPy input). */
        public Builder setData(double[] values, long... shape) {
            return setData(toFloat(values), shape);
        }

        /** Adds one named data array (served sorted by name). */
        public Builder addData(String name, NDArray array) {
            namedData();
            data.add(fromArray(name, array));
            return this;
        }

        /** Adds one named data input from row-major float32 values. */
        public Builder addData(String name, float[] values, long... shape) {
            namedData();
            data.add(fromValues(name, values, shape));
            return this;
        }

        private void namedData() {
            if (!dataNamed && !data.isEmpty()) {
                throw new IllegalStateException("NDArrayIter.Builder: addData cannot be mixed with positional setData");
            }
            dataNamed = true;
        }

        // label

        /** One label array (named {@code labelName}); null means no labels. */
        public Builder optLabel(NDArray array) {
            label.clear();
            if (array != null) {
                label.add(fromArray(null, array));
            }
            labelNamed = false;
            return this;
        }

        /** Several label arrays, named {@code _0_softmax_label}, ...; null or empty means no labels. */
        public Builder optLabel(List<NDArray> arrays) {
            label.clear();
            if (arrays != null) {
                for (NDArray a : arrays) {
                    label.add(fromArray(null, a));
                }
            }
            labelNamed = false;
            return this;
        }

        /** Named label arrays (served sorted by name); null or empty means no labels. */
        public Builder optLabel(Map<String, NDArray> arrays) {
            label.clear();
            if (arrays != null) {
                arrays.forEach((k, v) -> label.add(fromArray(k, v)));
            }
            labelNamed = true;
            return this;
        }

        /** One label per example: shape (labels.length,), float32. */
        public Builder optLabel(float[] labels) {
            return optLabel(labels, labels.length);
        }

        /** Integer class labels, converted to float32 (as MXNet converts an int64 NumPy label). */
        public Builder optLabel(int[] labels) {
            float[] f = new float[labels.length];
            for (int i = 0; i < f.length; i++) {
                f[i] = labels[i];
            }
            return optLabel(f, f.length);
        }

        /** Labels from rows of equal length: shape (rows.length, rows[0].length), float32. */
        public Builder optLabel(float[][] rows) {
            label.clear();
            label.add(fromRows(null, rows));
            labelNamed = false;
            return this;
        }

        /** Labels from row-major float32 values with the given shape (batch axis included). */
        public Builder optLabel(float[] values, long... shape) {
            label.clear();
            label.add(fromValues(null, values, shape));
            labelNamed = false;
            return this;
        }

        /** Adds one named label array. */
        public Builder addLabel(String name, NDArray array) {
            namedLabel();
            label.add(fromArray(name, array));
            return this;
        }

        /** Adds one named label input from row-major float32 values. */
        public Builder addLabel(String name, float[] values, long... shape) {
            namedLabel();
            label.add(fromValues(name, values, shape));
            return this;
        }

        private void namedLabel() {
            if (!labelNamed && !label.isEmpty()) {
                throw new IllegalStateException("NDArrayIter.Builder: addLabel cannot be mixed with positional optLabel");
            }
            labelNamed = true;
        }

        // options

        /** Examples per batch (default 1). */
        public Builder setBatchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        /** Whether to shuffle at construction and at every reset (default false). */
        public Builder optShuffle(boolean shuffle) {
            this.shuffle = shuffle;
            return this;
        }

        /**
         * The shuffle generator's seed (low 32 bits, as {@code np.random.seed}); the same seed
         * gives the same orders epoch after epoch. Default: a random seed.
         */
        public Builder optSeed(long seed) {
            this.seed = seed;
            return this;
        }

        /** {@code "pad"} (default), {@code "discard"} or {@code "roll_over"}. */
        public Builder optLastBatchHandle(String handle) {
            this.lastBatchHandle = LastBatchHandle.fromString(Objects.requireNonNull(handle, "last_batch_handle"));
            return this;
        }

        /** The last-batch policy (default {@link LastBatchHandle#PAD}). */
        public Builder optLastBatchHandle(LastBatchHandle handle) {
            this.lastBatchHandle = Objects.requireNonNull(handle, "last_batch_handle");
            return this;
        }

        /** Name of a single data input, and the base of positional names (default {@code data}). */
        public Builder optDataName(String name) {
            this.dataName = Objects.requireNonNull(name, "data_name");
            return this;
        }

        /** Name of a single label input, and the base of positional names (default {@code softmax_label}). */
        public Builder optLabelName(String name) {
            this.labelName = Objects.requireNonNull(name, "label_name");
            return this;
        }

        /** The layout of every input; its {@code 'N'} is the batch axis (default {@code NCHW}). */
        public Builder optLayout(String layout) {
            this.layout = Objects.requireNonNull(layout, "layout");
            return this;
        }

        /** Copies the inputs and builds the iterator (which is reset, and shuffled when enabled). */
        public NDArrayIter build() {
            return new NDArrayIter(this);
        }

        private static Input fromArray(String name, NDArray a) {
            Objects.requireNonNull(a, "NDArrayIter input array" + (name == null ? "" : " '" + name + "'"));
            if (name != null && name.isEmpty()) {
                throw new IllegalArgumentException("NDArrayIter input name must not be empty");
            }
            a.handle(); // throws if closed
            return new Input(name, a, null, a.shape().dims());
        }

        private static Input fromValues(String name, float[] values, long[] shape) {
            Objects.requireNonNull(values, "NDArrayIter input values");
            long size = new Shape(shape).size();
            if (size != values.length) {
                throw new IllegalArgumentException("NDArrayIter input" + (name == null ? "" : " '" + name + "'") + ": shape "
                        + DataDesc.shapeString(shape) + " needs " + size + " values, " + values.length + " given");
            }
            return new Input(name, null, values, shape.clone());
        }

        private static Input fromRows(String name, float[][] rows) {
            int cols = rows.length == 0 ? 0 : rows[0].length;
            float[] v = new float[Math.multiplyExact(rows.length, cols)];
            for (int i = 0; i < rows.length; i++) {
                if (rows[i].length != cols) {
                    throw new IllegalArgumentException(String.format(Locale.ROOT,
                            "NDArrayIter input rows are ragged: row %d has %d values, row 0 has %d", i, rows[i].length, cols));
                }
                System.arraycopy(rows[i], 0, v, i * cols, cols);
            }
            return new Input(name, null, v, new long[] {rows.length, cols});
        }

        private static float[] toFloat(double[] d) {
            float[] f = new float[d.length];
            for (int i = 0; i < d.length; i++) {
                f[i] = (float) d[i];
            }
            return f;
        }
    }
}
