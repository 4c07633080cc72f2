package dev.kiln.ndarray;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * Pure-Java codec for MXNet's NDArray list file ({@code mx.nd.save}, {@code .params}
 * checkpoints), module-api spec §7.2. Little-endian throughout:
 *
 * <pre>
 * u64 0x112, u64 0, u64 N, N records, u64 K (0 or N), K x (u64 length, UTF-8 name)
 * record V2: u32 0xF993FAC9, i32 stype (0 dense), i32 ndim, ndim x i64 dims
 *            [ndim 0: record ends], i32 dev_type, i32 dev_id, i32 dtype flag, raw data
 * </pre>
 *
 * <p>Reading accepts V2, V3 ({@code 0xF993FACA}: ndim 0 is a scalar, -1 "none"), V1 ({@code
 * 0xF993FAC8}: no storage type) and the pre-V1 legacy record (the first u32 is ndim, then u32
 * dims). Sparse records (row_sparse, csr) are rejected with a clear message. Writing produces
 * the V2 format MXNet 1.x writes, so MXNet loads the files; an input that was V2 re-encodes
 * byte for byte.
 *
 * <p>Corrupt input (truncation, wrong magic, counts or sizes larger than the file can hold,
 * negative dims, unknown dtype flags) raises {@link IOException} (from {@link #read(Path)}) or
 * {@link IllegalArgumentException} (from {@link #read(byte[])}), never an {@link OutOfMemoryError}:
 * every size is checked against the bytes actually present before anything is allocated.
 *
 * <p>Thread-safety: stateless; all methods are safe to call concurrently.
 */
public final class ParamsFile {
    /** List-file magic. */
    public static final long LIST_MAGIC = 0x112L;
    /** Record magic of the pre-numpy dense/sparse format MXNet 1.x writes. */
    public static final int V2_MAGIC = 0xF993FAC9;
    /** Record magic of the numpy-shape format. */
    public static final int V3_MAGIC = 0xF993FACA;
    /** Record magic of the first versioned format (no storage type). */
    public static final int V1_MAGIC = 0xF993FAC8;

    /** MXNet dev_type of the CPU. */
    public static final int DEV_CPU = 1;

    private ParamsFile() {}

    /**
     * One array of a list file: name ({@code ""} in unnamed lists; {@code arg:fc1_weight} in
     * checkpoints), element type, the device it was saved from, shape and the raw
     * little-endian element bytes.
     *
     * <p>A "none" array (MXNet's empty NDArray, saved as a record with ndim 0) has a null shape
     * and no data. A rank-0 shape (a V3 scalar) holds one element.
     *
     * <p>Thread-safety: the arrays are not copied on construction or access (they can be large);
     * treat them as read-only and an Entry is then immutable.
     */
    public static final class Entry {
        private final String name;
        private final DType dtype;
        private final int devType;
        private final int devId;
        private final long[] shape;
        private final byte[] data;

        /**
         * Creates an entry.
         *
         * @param name the name, {@code ""} for none
         * @param dtype element type
         * @param devType MXNet device type (1 cpu, 2 gpu, 3 cpu_pinned, 5 cpu_shared)
         * @param devId device ordinal
         * @param shape dims (not copied), or null for a "none" array
         * @param data raw little-endian elements (not copied); its length must be
         *     {@code product(shape) * dtype.bytes()}, or 0 for a "none" array
         * @throws IllegalArgumentException on negative dims or a data length that does not match
         */
        public Entry(String name, DType dtype, int devType, int devId, long[] shape, byte[] data) {
            this.name = name == null ? "" : name;
            this.dtype = Objects.requireNonNull(dtype, "dtype");
            this.devType = devType;
            this.devId = devId;
            this.shape = shape;
            this.data = Objects.requireNonNull(data, "data");
            if (shape == null) {
                if (data.length != 0) {
                    throw new IllegalArgumentException("entry '" + this.name + "': a none array (null shape) has no data");
                }
                return;
            }
            long n = elementCount(shape, "entry '" + this.name + "'");
            long bytes;
            try {
                bytes = Math.multiplyExact(n, dtype.bytes());
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("entry '" + this.name + "': shape " + Arrays.toString(shape) + " is too large");
            }
            if (bytes != data.length) {
                throw new IllegalArgumentException("entry '" + this.name + "': shape " + Arrays.toString(shape) + " of "
                        + dtype + " needs " + bytes + " bytes, got " + data.length);
            }
        }

        /**
         * A float32 CPU array from values.
         *
         * @param name the name ({@code ""} for none)
         * @param shape dims
         * @param values row-major values
         * @return the entry
         */
        public static Entry ofFloats(String name, long[] shape, float[] values) {
            ByteBuffer b = ByteBuffer.allocate(Math.multiplyExact(values.length, 4)).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(values);
            return new Entry(name, DType.FLOAT32, DEV_CPU, 0, shape.clone(), b.array());
        }

        /** @return the name, {@code ""} when unnamed */
        public String name() {
            return name;
        }

        /** @return the element type */
        public DType dtype() {
            return dtype;
        }

        /** @return MXNet device type it was saved from (1 = cpu, 2 = gpu) */
        public int devType() {
            return devType;
        }

        /** @return device ordinal it was saved from */
        public int devId() {
            return devId;
        }

        /** @return a copy of the dims, or null for a "none" array */
        public long[] shape() {
            return shape == null ? null : shape.clone();
        }

        /** @return true for MXNet's empty ("none") array */
        public boolean isNone() {
            return shape == null;
        }

        /** @return the number of elements (0 for a none array) */
        public long size() {
            return shape == null ? 0 : elementCount(shape, name);
        }

        /** @return the raw little-endian bytes, not copied: do not modify */
        public byte[] data() {
            return data;
        }

        /** @return a read-only little-endian view of the data */
        public ByteBuffer dataBuffer() {
            return ByteBuffer.wrap(data).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }

        /**
         * The elements as floats.
         *
         * @return a new array
         * @throws IllegalStateException if the dtype is not float32
         */
        public float[] toFloatArray() {
            if (dtype != DType.FLOAT32) {
                throw new IllegalStateException("entry '" + name + "' is " + dtype + ", not float32");
            }
            float[] out = new float[data.length / 4];
            ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
            return out;
        }

        /** Equal when name, dtype, device, shape and bytes are equal. */
        @Override
        public boolean equals(Object o) {
            if (this == o) {
                return true;
            }
            if (!(o instanceof Entry)) {
                return false;
            }
            Entry e = (Entry) o;
            return name.equals(e.name) && dtype == e.dtype && devType == e.devType && devId == e.devId
                    && Arrays.equals(shape, e.shape) && Arrays.equals(data, e.data);
        }

        @Override
        public int hashCode() {
            return Objects.hash(name, dtype, devType, devId, Arrays.hashCode(shape), Arrays.hashCode(data));
        }

        @Override
        public String toString() {
            return "Entry{" + (name.isEmpty() ? "" : name + " ") + (shape == null ? "none" : Arrays.toString(shape))
                    + " " + dtype + " dev(" + devType + "," + devId + ")}";
        }
    }

    private static long elementCount(long[] shape, String what) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException(what + ": negative dimension in shape " + Arrays.toString(shape));
            }
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException(what + ": shape " + Arrays.toString(shape) + " is too large");
            }
        }
        return n;
    }

    // =========================================================================================
    // Reading
    // =========================================================================================

    /**
     * Reads a list file.
     *
     * @param path the file
     * @return the arrays in file order, with names ({@code ""} for an unnamed list)
     * @throws IOException if the file cannot be read or is not a valid list file (message names
     *     the file, the record and the problem)
     */
    public static List<Entry> read(Path path) throws IOException {
        long size = Files.size(path);
        if (size > Integer.MAX_VALUE - 16) {
            throw new IOException(path + ": file of " + size + " bytes is too large to read at once");
        }
        byte[] bytes = Files.readAllBytes(path);
        try {
            return read(bytes);
        } catch (IllegalArgumentException e) {
            throw new IOException(path + ": " + e.getMessage(), e);
        }
    }

    /**
     * Decodes a list file held in memory.
     *
     * @param bytes the file content
     * @return the arrays in file order, with names ({@code ""} for an unnamed list)
     * @throws IllegalArgumentException if the content is not a valid list file
     */
    public static List<Entry> read(byte[] bytes) {
        Reader r = new Reader(bytes);
        long magic = r.u64("list magic");
        if (magic != LIST_MAGIC) {
            throw new IllegalArgumentException(String.format(
                    "not an MXNet NDArray list file: magic 0x%x at offset 0, expected 0x112", magic));
        }
        r.u64("reserved field");
        long count = r.u64("array count");
        // the smallest record (legacy, ndim 0) is 4 bytes
        if (count < 0 || count > r.remaining() / 4) {
            throw new IllegalArgumentException("array count " + Long.toUnsignedString(count) + " at offset 16 exceeds what the "
                    + bytes.length + "-byte file can hold");
        }
        List<Entry> arrays = new ArrayList<>((int) count);
        for (int i = 0; i < count; i++) {
            arrays.add(readRecord(r, i));
        }
        if (r.remaining() == 0) {
            // MXNet always writes the name count (and requires it when loading)
            throw new IllegalArgumentException("truncated file: missing name count after " + count + " arrays at offset "
                    + r.pos);
        }
        long nameCount = r.u64("name count");
        if (nameCount != 0 && nameCount != count) {
            throw new IllegalArgumentException("name count " + Long.toUnsignedString(nameCount) + " must be 0 or the array count "
                    + count);
        }
        if (nameCount == 0) {
            return Collections.unmodifiableList(arrays);
        }
        List<Entry> named = new ArrayList<>(arrays.size());
        for (int i = 0; i < count; i++) {
            int at = r.pos;
            long len = r.u64("length of name " + i);
            if (len < 0 || len > r.remaining()) {
                throw new IllegalArgumentException("name " + i + " at offset " + at + ": length " + Long.toUnsignedString(len)
                        + " exceeds the " + r.remaining() + " bytes left");
            }
            String name = r.utf8((int) len, "name " + i);
            Entry e = arrays.get(i);
            named.add(new Entry(name, e.dtype, e.devType, e.devId, e.shape, e.data));
        }
        return Collections.unmodifiableList(named);
    }

    private static Entry readRecord(Reader r, int i) {
        int start = r.pos;
        String what = "array " + i + " (offset " + start + ")";
        int first = r.i32(what + ": magic");
        long[] shape;
        boolean v3 = false;
        if (first == V2_MAGIC || first == V3_MAGIC) {
            v3 = first == V3_MAGIC;
            int stype = r.i32(what + ": storage type");
            if (stype != 0) {
                throw new IllegalArgumentException(what + ": " + (stype == 1 ? "row_sparse" : stype == 2 ? "csr"
                        : "storage type " + stype) + " arrays are not supported (only dense)");
            }
            shape = readShape64(r, what, v3);
        } else if (first == V1_MAGIC) {
            shape = readShape64(r, what, false);
        } else {
            // legacy: the first u32 is ndim, then u32 dims
            long ndim = Integer.toUnsignedLong(first);
            if (ndim > 32 || ndim * 4 > r.remaining()) {
                throw new IllegalArgumentException(String.format("%s: unknown record magic 0x%08x (not V1/V2/V3, "
                        + "and not a plausible legacy ndim)", what, first));
            }
            if (ndim == 0) {
                shape = null;
            } else {
                shape = new long[(int) ndim];
                for (int d = 0; d < ndim; d++) {
                    shape[d] = Integer.toUnsignedLong(r.i32(what + ": dim " + d));
                }
            }
        }
        if (shape == null) {
            return new Entry("", DType.FLOAT32, DEV_CPU, 0, null, new byte[0]);
        }
        int devType = r.i32(what + ": dev_type");
        int devId = r.i32(what + ": dev_id");
        int flag = r.i32(what + ": dtype");
        DType dtype;
        try {
            dtype = DType.fromId(flag);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(what + ": " + e.getMessage());
        }
        long n = elementCount(shape, what);
        long nbytes;
        try {
            nbytes = Math.multiplyExact(n, dtype.bytes());
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(what + ": shape " + Arrays.toString(shape) + " is too large");
        }
        if (nbytes > r.remaining()) {
            throw new IllegalArgumentException("truncated file: " + what + " of shape " + Arrays.toString(shape) + " "
                    + dtype + " needs " + nbytes + " bytes of data, only " + r.remaining() + " left");
        }
        byte[] data = r.bytes((int) nbytes);
        return new Entry("", dtype, devType, devId, shape, data);
    }

    /** TShape: i32 ndim + ndim x i64. V2/V1: ndim 0 = none (null). V3: 0 = scalar, -1 = none. */
    private static long[] readShape64(Reader r, String what, boolean v3) {
        int ndim = r.i32(what + ": ndim");
        if (v3 && ndim == -1) {
            return null;
        }
        if (ndim < 0 || ndim > 32) {
            throw new IllegalArgumentException(what + ": invalid ndim " + ndim);
        }
        if (ndim == 0 && !v3) {
            return null;
        }
        if ((long) ndim * 8 > r.remaining()) {
            throw new IllegalArgumentException("truncated file: " + what + ": " + ndim + " dims do not fit in the "
                    + r.remaining() + " bytes left");
        }
        long[] shape = new long[ndim];
        for (int d = 0; d < ndim; d++) {
            shape[d] = r.i64(what + ": dim " + d);
            if (shape[d] < 0) {
                throw new IllegalArgumentException(what + ": negative dimension " + shape[d] + " at axis " + d);
            }
        }
        return shape;
    }

    private static final class Reader {
        final ByteBuffer buf;
        int pos;

        Reader(byte[] bytes) {
            this.buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        }

        int remaining() {
            return buf.capacity() - pos;
        }

        private void need(int n, String what) {
            if (remaining() < n) {
                throw new IllegalArgumentException("truncated file: " + what + " at offset " + pos + " needs " + n
                        + " bytes, only " + remaining() + " left");
            }
        }

        long u64(String what) {
            need(8, what);
            long v = buf.getLong(pos);
            pos += 8;
            return v;
        }

        long i64(String what) {
            return u64(what);
        }

        int i32(String what) {
            need(4, what);
            int v = buf.getInt(pos);
            pos += 4;
            return v;
        }

        byte[] bytes(int n) {
            byte[] out = new byte[n];
            buf.get(pos, out, 0, n);
            pos += n;
            return out;
        }

        String utf8(int n, String what) {
            int at = pos;
            byte[] b = bytes(n);
            try {
                CharBuffer cb = StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(b));
                return cb.toString();
            } catch (CharacterCodingException e) {
                throw new IllegalArgumentException(what + " at offset " + at + " is not valid UTF-8");
            }
        }
    }

    // =========================================================================================
    // Writing
    // =========================================================================================

    /**
     * Encodes arrays as an MXNet 1.x list file with V2 records. Names are written when every
     * entry has one (a dict, as in checkpoints) and omitted when none has (a list).
     *
     * @param entries the arrays
     * @return the file content
     * @throws IllegalArgumentException if some entries are named and others not, or an entry is
     *     a rank-0 scalar (V2 cannot represent it; reshape to {@code (1,)})
     */
    public static byte[] encode(List<Entry> entries) {
        int named = 0;
        long size = 24 + 8;
        for (Entry e : entries) {
            Objects.requireNonNull(e, "entry");
            if (!e.name.isEmpty()) {
                named++;
                size += 8 + e.name.getBytes(StandardCharsets.UTF_8).length;
            }
            if (e.shape != null && e.shape.length == 0) {
                throw new IllegalArgumentException("entry '" + e.name + "': rank-0 (scalar) arrays cannot be written in "
                        + "the V2 format; reshape to (1,)");
            }
            size += 12 + (e.shape == null ? 0 : 8L * e.shape.length + 12 + e.data.length);
        }
        if (named != 0 && named != entries.size()) {
            throw new IllegalArgumentException("either every entry has a name or none has: " + named + " of "
                    + entries.size() + " are named");
        }
        if (size > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("list file of " + size + " bytes is too large to encode in memory");
        }
        ByteBuffer b = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(LIST_MAGIC).putLong(0).putLong(entries.size());
        for (Entry e : entries) {
            b.putInt(V2_MAGIC).putInt(0);
            if (e.shape == null) {
                b.putInt(0);
                continue;
            }
            b.putInt(e.shape.length);
            for (long d : e.shape) {
                b.putLong(d);
            }
            b.putInt(e.devType).putInt(e.devId).putInt(e.dtype.id());
            b.put(e.data);
        }
        b.putLong(named == 0 ? 0 : entries.size());
        if (named != 0) {
            for (Entry e : entries) {
                byte[] nb = e.name.getBytes(StandardCharsets.UTF_8);
                b.putLong(nb.length).put(nb);
            }
        }
        if (b.hasRemaining()) {
            throw new IllegalStateException("size computation mismatch: " + b.remaining() + " bytes unused");
        }
        return b.array();
    }

    /**
     * Writes arrays to a list file atomically: encodes them, writes a temporary file in the
     * same folder, forces it to disk and renames it over {@code path}; on failure the target is
     * unchanged and the temporary file removed.
     *
     * @param path the target file
     * @param entries the arrays (see {@link #encode(List)})
     * @throws IOException if writing fails
     */
    public static void write(Path path, List<Entry> entries) throws IOException {
        dev.kiln.internal.AtomicFiles.write(path, encode(entries));
    }
}
