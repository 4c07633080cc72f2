package dev.kiln.io;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * MXNet's {@code mx.rnn.BucketSentenceIter}: batches of integer-coded sentences grouped by
 * length into buckets, for a {@link dev.kiln.module.BucketingModule}.
 *
 * <ul>
 *   <li>Buckets: given, or (when null/empty) every sentence length that occurs at least
 *       {@code batchSize} times, as MXNet computes them. They are sorted.</li>
 *   <li>Each sentence goes to the smallest bucket at least as long as it and is padded to that
 *       length with {@code invalidLabel}; sentences longer than the largest bucket are discarded
 *       (a warning gives their number).</li>
 *   <li>The label is the data shifted left by one step, the last step being {@code invalidLabel}
 *       (language-model targets).</li>
 *   <li>Each bucket yields {@code floor(n / batchSize)} full batches (the remainder is not used);
 *       {@link #reset()} shuffles the order of the batches and the sentences inside each bucket
 *       with the iterator's seeded generator (the constructor calls it once, as MXNet does).</li>
 *   <li>Batches carry {@link DataBatch#bucketKey()} = the bucket length and their own
 *       provideData/provideLabel; {@link #provideData()} and {@link #defaultBucketKey()} describe
 *       the largest bucket.</li>
 *   <li>Layout {@code "NT"} gives {@code (batch, length)} arrays, {@code "TN"} gives
 *       {@code (length, batch)}.</li>
 * </ul>
 *
 * <p>Ownership: the sentences are copied; each batch's arrays belong to the batch (the caller
 * closes it). Thread-safety: not thread-safe.
 */
public final class BucketSentenceIter extends DataIter {
    private static final Logger LOG = LoggerFactory.getLogger(BucketSentenceIter.class);

    private final int batchSize;
    private final int[] buckets;
    private final float invalidLabel;
    private final String dataName;
    private final String labelName;
    private final DType dtype;
    private final String layout;
    private final int majorAxis;
    private final int numDiscarded;
    /** Per bucket: padded sentences (each of the bucket's length). */
    private final List<List<float[]>> data = new ArrayList<>();
    /** (bucket, first sentence) of every batch. */
    private final List<int[]> idx = new ArrayList<>();
    private final Random rng;
    private int cur;

    /**
     * MXNet's defaults: {@code invalidLabel=-1}, names {@code data}/{@code softmax_label},
     * float32, layout {@code NT}, automatic buckets, seed 0.
     */
    public BucketSentenceIter(int[][] sentences, int batchSize) {
        this(sentences, batchSize, null, -1, "data", "softmax_label", DType.FLOAT32, "NT", 0);
    }

    /**
     * A bucketing iterator.
     *
     * @param sentences    integer-coded sentences (copied)
     * @param batchSize    sentences per batch (> 0)
     * @param buckets      bucket lengths, or null/empty for MXNet's automatic choice
     * @param invalidLabel padding value for data and label
     * @param dataName     data input name
     * @param labelName    label input name
     * @param dtype        array type
     * @param layout       {@code "NT"} (batch major) or {@code "TN"} (time major)
     * @param seed         seed of the shuffling generator
     * @throws IllegalArgumentException for a bad batch size or layout, or when there is no bucket
     */
    public BucketSentenceIter(int[][] sentences, int batchSize, int[] buckets, int invalidLabel, String dataName, String labelName,
            DType dtype, String layout, long seed) {
        if (sentences == null) {
            throw new IllegalArgumentException("BucketSentenceIter: sentences is null");
        }
        if (batchSize <= 0) {
            throw new IllegalArgumentException("BucketSentenceIter: batch_size must be > 0, got " + batchSize);
        }
        this.majorAxis = layout == null ? -1 : layout.indexOf('N');
        if (!"NT".equals(layout) && !"TN".equals(layout)) {
            throw new IllegalArgumentException("Invalid layout " + layout + ": Must by NT (batch major) or TN (time major)");
        }
        if (buckets == null || buckets.length == 0) {
            int maxLen = 0;
            for (int[] s : sentences) {
                maxLen = Math.max(maxLen, s.length);
            }
            int[] count = new int[maxLen + 1];
            for (int[] s : sentences) {
                count[s.length]++;
            }
            List<Integer> auto = new ArrayList<>();
            for (int len = 0; len <= maxLen; len++) {
                if (count[len] >= batchSize) {
                    auto.add(len);
                }
            }
            buckets = auto.stream().mapToInt(Integer::intValue).toArray();
        } else {
            buckets = buckets.clone();
        }
        Arrays.sort(buckets);
        if (buckets.length == 0) {
            throw new IllegalArgumentException("BucketSentenceIter: no bucket (no sentence length occurs batch_size=" + batchSize
                    + " times; give the buckets explicitly)");
        }
        if (buckets[0] <= 0) {
            throw new IllegalArgumentException("BucketSentenceIter: bucket lengths must be > 0, got " + Arrays.toString(buckets));
        }
        this.buckets = buckets;
        this.batchSize = batchSize;
        this.invalidLabel = invalidLabel;
        this.dataName = dataName;
        this.labelName = labelName;
        this.dtype = dtype;
        this.layout = layout;
        this.rng = new Random(seed);
        for (int i = 0; i < buckets.length; i++) {
            data.add(new ArrayList<>());
        }
        int discarded = 0;
        for (int[] s : sentences) {
            int b = bisectLeft(buckets, s.length);
            if (b == buckets.length) {
                discarded++;
                continue;
            }
            float[] buf = new float[buckets[b]];
            Arrays.fill(buf, invalidLabel);
            for (int t = 0; t < s.length; t++) {
                buf[t] = s[t];
            }
            data.get(b).add(buf);
        }
        this.numDiscarded = discarded;
        if (discarded > 0) {
            LOG.warn("discarded {} sentences longer than the largest bucket.", discarded);
        }
        for (int i = 0; i < buckets.length; i++) {
            for (int j = 0; j + batchSize <= data.get(i).size(); j += batchSize) {
                idx.add(new int[] {i, j});
            }
        }
        reset();
    }

    private static int bisectLeft(int[] a, int x) {
        int lo = 0;
        int hi = a.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (a[mid] < x) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** The sorted bucket lengths. */
    public int[] buckets() {
        return buckets.clone();
    }

    /** Number of sentences that went into each bucket (before batching). */
    public int[] bucketSizes() {
        int[] n = new int[buckets.length];
        for (int i = 0; i < n.length; i++) {
            n[i] = data.get(i).size();
        }
        return n;
    }

    /** Number of sentences discarded because they are longer than the largest bucket. */
    public int numDiscarded() {
        return numDiscarded;
    }

    /** Number of batches per epoch. */
    public int numBatches() {
        return idx.size();
    }

    @Override
    public void reset() {
        cur = 0;
        Collections.shuffle(idx, rng);
        for (List<float[]> b : data) {
            Collections.shuffle(b, rng);
        }
    }

    @Override
    public boolean hasNext() {
        return cur < idx.size();
    }

    @Override
    public DataBatch next() {
        if (!hasNext()) {
            throw new java.util.NoSuchElementException("BucketSentenceIter: no more batches; call reset()");
        }
        int[] ij = idx.get(cur++);
        int len = buckets[ij[0]];
        List<float[]> bucket = data.get(ij[0]);
        float[] d = new float[batchSize * len];
        float[] l = new float[batchSize * len];
        for (int n = 0; n < batchSize; n++) {
            float[] s = bucket.get(ij[1] + n);
            for (int t = 0; t < len; t++) {
                float lab = t + 1 < len ? s[t + 1] : invalidLabel;
                int pos = majorAxis == 0 ? n * len + t : t * batchSize + n;
                d[pos] = s[t];
                l[pos] = lab;
            }
        }
        long[] shape = shape(len);
        NDArray da = array(d, shape);
        NDArray la;
        try {
            la = array(l, shape);
        } catch (RuntimeException e) {
            da.close();
            throw e;
        }
        return new DataBatch(List.of(da), List.of(la), 0, null, len, List.of(desc(dataName, len)), List.of(desc(labelName, len)));
    }

    /** The shape of a batch of sequences of length {@code len}: (batch, len), or (len, batch) when time-major. */
    private long[] shape(int len) {
        return majorAxis == 0 ? new long[] {batchSize, len} : new long[] {len, batchSize};
    }

    private DataDesc desc(String name, int len) {
        return new DataDesc(name, shape(len), dtype, layout);
    }

    private NDArray array(float[] v, long[] shape) {
        NDArray f = NDArray.create(v, shape).detach();
        if (dtype == DType.FLOAT32) {
            return f;
        }
        try (f) {
            return f.asType(dtype).detach();
        }
    }

    @Override
    public int batchSize() {
        return batchSize;
    }

    /** The data description of the default (largest) bucket. */
    @Override
    public List<DataDesc> provideData() {
        return List.of(desc(dataName, defaultBucketKey()));
    }

    /** The label description of the default (largest) bucket. */
    @Override
    public List<DataDesc> provideLabel() {
        return List.of(desc(labelName, defaultBucketKey()));
    }

    /** The largest bucket. */
    @Override
    public Integer defaultBucketKey() {
        return buckets[buckets.length - 1];
    }

    /** Context of the arrays (always cpu(0)). */
    public Context context() {
        return Context.cpu();
    }
}
