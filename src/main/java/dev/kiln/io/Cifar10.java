package dev.kiln.io;

import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

/**
 * Reader of CIFAR-10's binary record files ({@code data_batch_N.bin}, {@code test_batch.bin},
 * plain or gzipped): each record is one label byte (0-9) then 1,024 red, 1,024 green and 1,024
 * blue bytes, each plane row-major 32x32. Stateless and thread-safe.
 */
public final class Cifar10 {
    /** Bytes per record: label + 3 x 32 x 32. */
    public static final int RECORD = 1 + 3 * 32 * 32;

    /** Images as (N, 3, 32, 32) floats in [0, 1] (NCHW, row-major) and labels (N). */
    public record Data(float[] images, float[] labels, int count) {
        /**
         * Normalises in place with per-channel mean and standard deviation computed over these
         * images, and returns them ({@code [meanR, meanG, meanB, stdR, stdG, stdB]}) so that other
         * data can be normalised the same way with {@link #normalize(double[])}.
         */
        public double[] standardize() {
            double[] stats = new double[6];
            int plane = 32 * 32;
            for (int c = 0; c < 3; c++) {
                double s = 0;
                double s2 = 0;
                for (int n = 0; n < count; n++) {
                    int base = (n * 3 + c) * plane;
                    for (int i = 0; i < plane; i++) {
                        double v = images[base + i];
                        s += v;
                        s2 += v * v;
                    }
                }
                double m = s / ((double) count * plane);
                stats[c] = m;
                stats[3 + c] = Math.sqrt(Math.max(1e-12, s2 / ((double) count * plane) - m * m));
            }
            normalize(stats);
            return stats;
        }

        /** Subtracts the channel means and divides by the channel deviations ({@link #standardize()}'s layout). */
        public void normalize(double[] stats) {
            int plane = 32 * 32;
            for (int n = 0; n < count; n++) {
                for (int c = 0; c < 3; c++) {
                    int base = (n * 3 + c) * plane;
                    for (int i = 0; i < plane; i++) {
                        images[base + i] = (float) ((images[base + i] - stats[c]) / stats[3 + c]);
                    }
                }
            }
        }
    }

    private Cifar10() {}

    /** Reads every record of {@code file} (gzip recognised by its magic bytes). */
    public static Data load(Path file) throws IOException {
        return load(file, Integer.MAX_VALUE);
    }

    /** Reads at most {@code limit} records of {@code file}. */
    public static Data load(Path file, int limit) throws IOException {
        if (limit < 0) {
            throw new IllegalArgumentException("limit must be >= 0, got " + limit);
        }
        long size = Files.size(file);
        byte[] head = new byte[2];
        try (InputStream in = Files.newInputStream(file)) {
            if (in.readNBytes(head, 0, 2) < 2) {
                throw new IOException(file + ": empty or truncated CIFAR-10 file");
            }
        }
        boolean gz = (head[0] & 0xff) == 0x1f && (head[1] & 0xff) == 0x8b;
        if (!gz && size % RECORD != 0) {
            throw new IOException(file + ": " + size + " bytes is not a whole number of " + RECORD + "-byte CIFAR-10 records");
        }
        java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
             InputStream in = gz ? new GZIPInputStream(raw, 1 << 16) : raw) {
            byte[] rec = new byte[RECORD];
            int n = 0;
            while (n < limit) {
                int got = in.readNBytes(rec, 0, RECORD);
                if (got == 0) {
                    break;
                }
                if (got < RECORD) {
                    throw new EOFException(file + ": truncated record " + n + " (" + got + " of " + RECORD + " bytes)");
                }
                if ((rec[0] & 0xff) > 9) {
                    throw new IOException(file + ": record " + n + " has label " + (rec[0] & 0xff) + ", expected 0-9");
                }
                all.write(rec);
                n++;
            }
        }
        byte[] bytes = all.toByteArray();
        int count = bytes.length / RECORD;
        float[] images = new float[count * 3072];
        float[] labels = new float[count];
        for (int n = 0; n < count; n++) {
            int off = n * RECORD;
            labels[n] = bytes[off] & 0xff;
            for (int i = 0; i < 3072; i++) {
                images[n * 3072 + i] = (bytes[off + 1 + i] & 0xff) / 255f;
            }
        }
        return new Data(images, labels, count);
    }
}
