package dev.kiln.io;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

/**
 * Reader of MNIST's idx files (plain or gzipped). Images become float pixels scaled to [0, 1]
 * as MXNet's MNISTIter does; labels become floats 0..9. Stateless and thread-safe.
 */
public final class Mnist {
    /** Images (N x rows*cols, row-major, in [0,1]) and labels (N). */
    public record Data(float[] images, float[] labels, int count, int rows, int cols) {}

    private Mnist() {}

    /** Reads {@code <dir>/<prefix>-images-idx3-ubyte[.gz]} and the matching labels; prefix "train" or "t10k". */
    public static Data load(Path dir, String prefix) throws IOException {
        Path img = pick(dir, prefix + "-images-idx3-ubyte");
        Path lab = pick(dir, prefix + "-labels-idx1-ubyte");
        try (DataInputStream is = open(img); DataInputStream ls = open(lab)) {
            int magic = is.readInt();
            if (magic != 2051) {
                throw new IOException(img + ": not an idx3 image file (magic " + magic + ", expected 2051)");
            }
            int n = is.readInt();
            int rows = is.readInt();
            int cols = is.readInt();
            if (n < 0 || rows <= 0 || cols <= 0 || (long) n * rows * cols > Integer.MAX_VALUE - 16) {
                throw new IOException(img + ": implausible header n=" + n + " rows=" + rows + " cols=" + cols);
            }
            int lmagic = ls.readInt();
            if (lmagic != 2049) {
                throw new IOException(lab + ": not an idx1 label file (magic " + lmagic + ", expected 2049)");
            }
            int ln = ls.readInt();
            if (ln != n) {
                throw new IOException("image count " + n + " differs from label count " + ln);
            }
            byte[] pix = new byte[n * rows * cols];
            is.readFully(pix);
            byte[] lb = new byte[n];
            ls.readFully(lb);
            float[] images = new float[pix.length];
            for (int i = 0; i < pix.length; i++) {
                images[i] = (pix[i] & 0xff) / 255f;
            }
            float[] labels = new float[n];
            for (int i = 0; i < n; i++) {
                int v = lb[i] & 0xff;
                if (v > 9) {
                    throw new IOException(lab + ": label " + v + " at " + i + " is not a digit");
                }
                labels[i] = v;
            }
            return new Data(images, labels, n, rows, cols);
        } catch (EOFException e) {
            throw new IOException("truncated MNIST file in " + dir, e);
        }
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

    private static DataInputStream open(Path p) throws IOException {
        InputStream in = new BufferedInputStream(Files.newInputStream(p), 1 << 16);
        if (p.toString().endsWith(".gz")) {
            in = new GZIPInputStream(in, 1 << 16);
        }
        return new DataInputStream(in);
    }
}
