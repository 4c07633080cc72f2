package dev.kiln.io;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reader of MNIST's idx files (plain or gzipped, recognised by their magic bytes).
 * {@link #readIdx} gives the raw unsigned bytes (what {@link MNISTIter} batches);
 * {@link #load} gives float pixels scaled by 1/255 and float labels for quick experiments.
 * Stateless and thread-safe.
 */
public final class Mnist {
    /** Images (N x rows*cols, row-major, in [0,1]) and labels (N). */
    public record Data(float[] images, float[] labels, int count, int rows, int cols) {}

    /**
     * The contents of an unsigned-byte idx file: its dimensions (as in the header, the first
     * being the item count, possibly restricted by {@link #readIdx(Path, long, long)}) and the
     * values in row-major order.
     */
    public record Idx(int[] dims, byte[] data) {
        /** Number of items (the first dimension). */
        public int count() {
            return dims[0];
        }

        /** Bytes per item (the product of the other dimensions). */
        public int itemSize() {
            int s = 1;
            for (int i = 1; i < dims.length; i++) {
                s *= dims[i];
            }
            return s;
        }
    }

    private Mnist() {}

    /** Reads {@code <dir>/<prefix>-images-idx3-ubyte[.gz]} and the matching labels; prefix "train" or "t10k". */
    public static Data load(Path dir, String prefix) throws IOException {
        Path img = pick(dir, prefix + "-images-idx3-ubyte");
        Path lab = pick(dir, prefix + "-labels-idx1-ubyte");
        Idx im = readIdx(img);
        Idx lb = readIdx(lab);
        if (im.dims().length != 3) {
            throw new IOException(img + ": not an idx3 image file (" + im.dims().length + " dimensions)");
        }
        if (lb.dims().length != 1) {
            throw new IOException(lab + ": not an idx1 label file (" + lb.dims().length + " dimensions)");
        }
        int n = im.count();
        if (lb.count() != n) {
            throw new IOException("image count " + n + " differs from label count " + lb.count());
        }
        byte[] pix = im.data();
        float[] images = new float[pix.length];
        for (int i = 0; i < pix.length; i++) {
            images[i] = (pix[i] & 0xff) / 255f;
        }
        float[] labels = new float[n];
        for (int i = 0; i < n; i++) {
            int v = lb.data()[i] & 0xff;
            if (v > 9) {
                throw new IOException(lab + ": label " + v + " at " + i + " is not a digit");
            }
            labels[i] = v;
        }
        return new Data(images, labels, n, im.dims()[1], im.dims()[2]);
    }

    /** Reads a whole unsigned-byte idx file. */
    public static Idx readIdx(Path file) throws IOException {
        return readIdx(file, 0, -1);
    }

    /**
     * Reads items {@code [start, end)} of an unsigned-byte idx file ({@code end < 0}: to the
     * last item). The header is big-endian: two zero bytes, the type code (0x08 = unsigned
     * byte), the number of dimensions, then one int32 per dimension.
     *
     * @throws IOException when the file is missing, is not an unsigned-byte idx file, or is
     *                     shorter than its header says (the message names the file)
     */
    public static Idx readIdx(Path file, long start, long end) throws IOException {
        try {
            return readIdxUnchecked(file, start, end);
        } catch (java.util.zip.ZipException | java.io.EOFException e) {
            // a corrupt or truncated .gz: name the file (the JDK's messages do not)
            throw new IOException(file + ": corrupt or truncated gzip data: " + (e.getMessage() == null ? "unexpected end of file" : e.getMessage()), e);
        }
    }

    private static Idx readIdxUnchecked(Path file, long start, long end) throws IOException {
        try (DataInputStream in = new DataInputStream(TextRows.open(file))) {
            int[] dims = header(in, file);
            long count = dims[0];
            long e = end < 0 ? count : end;
            if (start < 0 || start > e || e > count) {
                throw new IllegalArgumentException(file + ": item range [" + start + ", " + e + ") outside [0, " + count + ")");
            }
            long item = 1;
            long bytes;
            long total;
            try {
                for (int i = 1; i < dims.length; i++) {
                    item = Math.multiplyExact(item, dims[i]);
                }
                bytes = Math.multiplyExact(e - start, item);
                total = Math.multiplyExact(count, item);
            } catch (ArithmeticException x) {
                throw new IOException(file + ": idx dimensions " + java.util.Arrays.toString(dims) + " overflow 64-bit sizes");
            }
            if (bytes > Integer.MAX_VALUE - 16 || item > Integer.MAX_VALUE - 16) {
                throw new IOException(file + ": " + Math.max(bytes, item) + " bytes do not fit one Java array");
            }
            skipFully(in, start * item, file, total);
            // readNBytes(len) grows its buffer as data arrives: a header announcing 2 GB over a
            // short file does not allocate 2 GB first
            byte[] data = in.readNBytes((int) bytes);
            int got = data.length;
            if (got != bytes) {
                throw new IOException(file + ": truncated idx file: the header announces " + count + " items of " + item
                        + " bytes, the data end after " + (start * item + got) + " bytes");
            }
            dims[0] = (int) (e - start);
            return new Idx(dims, data);
        }
    }

    /** The dimensions in an unsigned-byte idx file's header (the first is the item count). */
    public static int[] readIdxDims(Path file) throws IOException {
        try (DataInputStream in = new DataInputStream(TextRows.open(file))) {
            return header(in, file);
        } catch (java.util.zip.ZipException | java.io.EOFException e) {
            throw new IOException(file + ": corrupt or truncated gzip data: " + (e.getMessage() == null ? "unexpected end of file" : e.getMessage()), e);
        }
    }

    private static int[] header(DataInputStream in, Path file) throws IOException {
        byte[] magic = new byte[4];
        if (in.readNBytes(magic, 0, 4) != 4) {
            throw new IOException(file + ": truncated idx header");
        }
        if (magic[0] != 0 || magic[1] != 0) {
            throw new IOException(file + ": not an idx file (magic bytes " + hex(magic) + ")");
        }
        if (magic[2] != 0x08) {
            throw new IOException(file + ": idx element type 0x" + Integer.toHexString(magic[2] & 0xff)
                    + " is not supported (only 0x08, unsigned byte)");
        }
        int nd = magic[3] & 0xff;
        if (nd < 1) {
            throw new IOException(file + ": idx file with 0 dimensions");
        }
        int[] dims = new int[nd];
        byte[] hdr = new byte[4 * nd];
        if (in.readNBytes(hdr, 0, hdr.length) != hdr.length) {
            throw new IOException(file + ": truncated idx header");
        }
        for (int i = 0; i < nd; i++) {
            dims[i] = ((hdr[4 * i] & 0xff) << 24) | ((hdr[4 * i + 1] & 0xff) << 16) | ((hdr[4 * i + 2] & 0xff) << 8) | (hdr[4 * i + 3] & 0xff);
            if (dims[i] < 0) {
                throw new IOException(file + ": negative dimension " + dims[i] + " in the idx header");
            }
        }
        return dims;
    }

    private static void skipFully(InputStream in, long n, Path file, long total) throws IOException {
        long left = n;
        byte[] sink = new byte[1 << 16];
        while (left > 0) {
            int r = in.read(sink, 0, (int) Math.min(sink.length, left));
            if (r < 0) {
                throw new IOException(file + ": truncated idx file: the header announces " + total + " bytes of data, the data end after "
                        + (n - left) + " bytes");
            }
            left -= r;
        }
    }

    private static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) {
            s.append(String.format("%02x", x & 0xff));
        }
        return s.toString();
    }

    private static Path pick(Path dir, String base) throws IOException {
        Path gz = dir.resolve(base + ".gz");
        if (Files.exists(gz)) {
            return gz;
        }
        Path raw = dir.resolve(base);
        if (Files.exists(raw)) {
            return raw;
        }
        throw new IOException("MNIST file " + base + "[.gz] not found in " + dir.toAbsolutePath());
    }
}
