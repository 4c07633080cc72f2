package dev.kiln.io;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.Shape;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * Batches of MNIST images and labels from idx files, MXNet's native {@code MNISTIter}
 * ({@code src/io/iter_mnist.cc}).
 *
 * <pre>{@code
 * try (MNISTIter it = MNISTIter.builder()
 *         .setImage(dir.resolve("train-images-idx3-ubyte.gz"))
 *         .setLabel(dir.resolve("train-labels-idx1-ubyte.gz"))
 *         .setBatchSize(100).optFlat(true).build()) { ... }
 * }</pre>
 *
 * <p>MXNet semantics (spec 6.5): pixels are scaled by <b>1/256</b> (not 1/255) into float32;
 * data batches are {@code (B, 1, rows, cols)}, or {@code (B, rows*cols)} when flat; labels are
 * {@code (B,)} float32. With {@code shuffle} (the default) the examples are permuted <b>once, at
 * construction</b>, with {@code std::mt19937(seed)} and libstdc++'s {@code std::shuffle}: the
 * order is exactly MXNet 1.9.1's for the same seed, and it repeats every epoch. The last
 * incomplete batch is dropped (no pad). {@code num_parts}/{@code part_index} select the
 * contiguous shard {@code [count*p/parts, count*(p+1)/parts)} before shuffling.
 * {@link DataBatch#index()} holds each example's position in the files (MXNet leaves it unset).
 *
 * <p>Files may be gzipped (recognised by their magic bytes); when a path does not exist but the
 * same path with {@code .gz} does, that file is read. The idx header's magic number is checked
 * (MXNet ignores it), as are truncation and image/label count mismatches.
 *
 * <p>Ownership: the images are held in Java memory as bytes; each batch holds new cpu(0) arrays
 * owned by the caller. Thread-safety: one thread at a time.
 */
public final class MNISTIter extends FixedDescIter {
    private static final Logger LOG = LoggerFactory.getLogger(MNISTIter.class);
    private static final float[] SCALE = new float[256];

    static {
        for (int i = 0; i < 256; i++) {
            SCALE[i] = i * (1.0f / 256.0f);
        }
    }

    private final byte[] images;   // (count, rows*cols) after the shuffle
    private final float[] labels;  // (count,)
    private final long[] ids;      // position of each example in the files
    private final int count;
    private final int rows;
    private final int cols;
    private final int batchSize;
    private final boolean flat;
    private int loc;

    private MNISTIter(Builder b) throws IOException {
        if (b.batchSize < 1) {
            throw new IllegalArgumentException("MNISTIter batch_size must be >= 1, got " + b.batchSize);
        }
        if (b.numParts < 1) {
            throw new IllegalArgumentException("MNISTIter num_parts must be >= 1, got " + b.numParts);
        }
        if (b.partIndex < 0 || b.partIndex >= b.numParts) {
            throw new IllegalArgumentException("MNISTIter part_index must be in [0, " + b.numParts + "), got " + b.partIndex);
        }
        Path imgPath = resolve(b.image);
        Path labPath = resolve(b.label);
        int[] imgDims = Mnist.readIdxDims(imgPath);
        if (imgDims.length != 3) {
            throw new IOException(imgPath + ": not an MNIST image file (" + imgDims.length + " dimensions, expected 3)");
        }
        int[] labDims = Mnist.readIdxDims(labPath);
        if (labDims.length != 1) {
            throw new IOException(labPath + ": not an MNIST label file (" + labDims.length + " dimensions, expected 1)");
        }
        if (imgDims[0] != labDims[0]) {
            throw new MalformedDataException(labPath, 0, "has " + labDims[0] + " labels for the " + imgDims[0] + " images of " + imgPath);
        }
        long start = partStart(imgDims[0], b.numParts, b.partIndex);
        long end = partStart(imgDims[0], b.numParts, b.partIndex + 1);
        Mnist.Idx im = Mnist.readIdx(imgPath, start, end);
        Mnist.Idx lb = Mnist.readIdx(labPath, start, end);
        this.count = im.count();
        this.rows = im.dims()[1];
        this.cols = im.dims()[2];
        this.batchSize = b.batchSize;
        this.flat = b.flat;
        int pixels = rows * cols;
        int[] inst = new int[count];
        for (int i = 0; i < count; i++) {
            inst[i] = i;
        }
        if (b.shuffle) {
            new Mt19937(b.seed).stdShuffle(inst);
        }
        this.images = new byte[im.data().length];
        this.labels = new float[count];
        this.ids = new long[count];
        for (int i = 0; i < count; i++) {
            int r = inst[i];
            System.arraycopy(im.data(), r * pixels, images, i * pixels, pixels);
            labels[i] = lb.data()[r] & 0xff;
            ids[i] = start + r;
        }
        long[] dataShape = flat ? new long[] {batchSize, pixels} : new long[] {batchSize, 1, rows, cols};
        describe(List.of(new DataDesc(b.dataName, dataShape, DType.FLOAT32, DataDesc.DEFAULT_LAYOUT)),
                List.of(new DataDesc(b.labelName, new long[] {batchSize}, DType.FLOAT32, DataDesc.DEFAULT_LAYOUT)));
        if (!b.silent) {
            LOG.info("MNISTIter: load {} images, shuffle={}, shape={}", count, b.shuffle ? 1 : 0, new Shape(dataShape));
        }
    }

    /** MXNet's {@code GetPart}: {@code (int) (count / (double) parts * part)}. */
    private static long partStart(int count, int parts, int part) {
        return (long) ((double) count / parts * part);
    }

    private static Path resolve(Path p) {
        if (!Files.exists(p)) {
            Path gz = Path.of(p + ".gz");
            if (Files.exists(gz)) {
                return gz;
            }
        }
        return p;
    }

    /** A builder; see the class documentation. */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public boolean hasNext() {
        checkOpen();
        return (long) loc + batchSize <= count;
    }

    @Override
    public DataBatch next() {
        if (!hasNext()) {
            throw endOfEpoch();
        }
        int pixels = rows * cols;
        float[] px = new float[batchSize * pixels];
        int base = loc * pixels;
        for (int i = 0; i < px.length; i++) {
            px[i] = SCALE[images[base + i] & 0xff];
        }
        float[] lb = new float[batchSize];
        System.arraycopy(labels, loc, lb, 0, batchSize);
        long[] index = new long[batchSize];
        System.arraycopy(ids, loc, index, 0, batchSize);
        loc += batchSize;
        return hostBatch(d -> d.set(px), l -> l.set(lb), 0, index);
    }

    /** Back to the first batch; the order does not change (it was fixed at construction). */
    @Override
    public void reset() {
        checkOpen();
        loc = 0;
    }

    @Override
    public int batchSize() {
        return batchSize;
    }

    /** Number of examples in this shard. */
    public int numExamples() {
        return count;
    }

    /** Marks the iterator closed (it holds only Java memory). Idempotent. */
    @Override
    public void close() {
        markClosed();
    }

    /** Builds an {@link MNISTIter} with MXNet's defaults. Not thread-safe. */
    public static final class Builder {
        private Path image = Path.of("./train-images-idx3-ubyte");
        private Path label = Path.of("./train-labels-idx1-ubyte");
        private int batchSize = 128;
        private boolean shuffle = true;
        private boolean flat;
        private int seed;
        private boolean silent;
        private int numParts = 1;
        private int partIndex;
        private String dataName = "data";
        private String labelName = "softmax_label";

        private Builder() {}

        /** The idx3 image file, plain or gzipped (default {@code ./train-images-idx3-ubyte}). */
        public Builder setImage(Path image) {
            this.image = Objects.requireNonNull(image, "image");
            return this;
        }

        /** The idx1 label file, plain or gzipped (default {@code ./train-labels-idx1-ubyte}). */
        public Builder setLabel(Path label) {
            this.label = Objects.requireNonNull(label, "label");
            return this;
        }

        /** Examples per batch (default 128). */
        public Builder setBatchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        /** Whether to shuffle once at construction (default true). */
        public Builder optShuffle(boolean shuffle) {
            this.shuffle = shuffle;
            return this;
        }

        /** Data as {@code (B, rows*cols)} instead of {@code (B, 1, rows, cols)} (default false). */
        public Builder optFlat(boolean flat) {
            this.flat = flat;
            return this;
        }

        /** The shuffle seed (default 0; MXNet's order for the same seed). */
        public Builder optSeed(int seed) {
            this.seed = seed;
            return this;
        }

        /** Whether to skip the one-line INFO log at construction (default false). */
        public Builder optSilent(boolean silent) {
            this.silent = silent;
            return this;
        }

        /** Number of shards (default 1). */
        public Builder optNumParts(int numParts) {
            this.numParts = numParts;
            return this;
        }

        /** Which shard to read, 0-based (default 0). */
        public Builder optPartIndex(int partIndex) {
            this.partIndex = partIndex;
            return this;
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

        /**
         * Reads the files and builds the iterator.
         *
         * @throws IOException when a file is missing, not an idx file of the right rank, or truncated
         */
        public MNISTIter build() throws IOException {
            return new MNISTIter(this);
        }
    }
}
