package dev.kiln.io;

import dev.kiln.ndarray.DType;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MXNet's mx.rnn.BucketSentenceIter: bucket assignment, padding, shifted labels, counts, layouts, shuffling. */
@ExtendWith(NoLeaks.class)
class BucketSentenceIterTest {

    /** Sentence i has length lens[i] and tokens 100*i + 1, 100*i + 2, ... (so each can be recognised in a batch). */
    static int[][] sentences(int... lens) {
        int[][] s = new int[lens.length][];
        for (int i = 0; i < lens.length; i++) {
            s[i] = new int[lens[i]];
            for (int t = 0; t < lens[i]; t++) {
                s[i][t] = 100 * i + t + 1;
            }
        }
        return s;
    }

    static BucketSentenceIter iter(int[][] s, int batch, int[] buckets, String layout, long seed) {
        return new BucketSentenceIter(s, batch, buckets, -1, "data", "softmax_label", DType.FLOAT32, layout, seed);
    }

    /** Each sentence goes to the smallest bucket that holds it (bisect_left); longer ones are discarded. */
    @Test
    void assignsPadsShiftsAndCounts() {
        // lengths: 3 -> 4, 4 -> 4, 5 -> 8, 8 -> 8, 9 -> discarded, 1 -> 4, 7 -> 8, 2 -> 4, 12 -> discarded
        int[][] s = sentences(3, 4, 5, 8, 9, 1, 7, 2, 12);
        try (BucketSentenceIter it = iter(s, 2, new int[] {8, 4}, "NT", 0)) {
            assertArrayEquals(new int[] {4, 8}, it.buckets(), "buckets are sorted");
            assertArrayEquals(new int[] {4, 3}, it.bucketSizes());
            assertEquals(2, it.numDiscarded());
            assertEquals(2 + 1, it.numBatches(), "full batches only: 4/2 + floor(3/2)");
            assertEquals(8, it.defaultBucketKey());
            assertEquals(List.of(new DataDesc("data", new long[] {2, 8}, DType.FLOAT32, "NT")), it.provideData());
            assertEquals("NT", it.provideLabel().get(0).layout());
            Map<Integer, Integer> perBucket = new HashMap<>();
            int seen = 0;
            while (it.hasNext()) {
                try (DataBatch b = it.next()) {
                    int key = (Integer) b.bucketKey();
                    perBucket.merge(key, 1, Integer::sum);
                    assertArrayEquals(new long[] {2, key}, b.data().get(0).shape().dims());
                    assertEquals(new DataDesc("data", new long[] {2, key}), b.provideData().get(0));
                    assertEquals(new DataDesc("softmax_label", new long[] {2, key}), b.provideLabel().get(0));
                    float[] d = b.data().get(0).toFloatArray();
                    float[] l = b.label().get(0).toFloatArray();
                    for (int n = 0; n < 2; n++) {
                        int id = (int) d[n * key] / 100;
                        int len = s[id].length;
                        assertTrue(len <= key && (key == 4 || len > 4), "length " + len + " in bucket " + key);
                        for (int t = 0; t < key; t++) {
                            float want = t < len ? s[id][t] : -1;
                            assertEquals(want, d[n * key + t], "data of sentence " + id + " at " + t);
                            float next = t + 1 < key ? (t + 1 < len ? s[id][t + 1] : -1) : -1;
                            assertEquals(next, l[n * key + t], "label = data shifted left, at " + t);
                        }
                    }
                    seen++;
                }
            }
            assertEquals(3, seen);
            assertEquals(Map.of(4, 2, 8, 1), perBucket);
            assertThrows(NoSuchElementException.class, it::next);
        }
    }

    /** Automatic buckets (MXNet): every length that occurs at least batch_size times. */
    @Test
    void automaticBucketsFollowMxnet() {
        // lengths 2 x3, 3 x1, 5 x2, 6 x4; batch 2 -> buckets [2, 5, 6]; the length-3 sentence goes into bucket 5
        int[][] s = sentences(2, 6, 5, 2, 6, 3, 6, 2, 5, 6);
        try (BucketSentenceIter it = new BucketSentenceIter(s, 2)) {
            assertArrayEquals(new int[] {2, 5, 6}, it.buckets());
            assertArrayEquals(new int[] {3, 3, 4}, it.bucketSizes());
            assertEquals(0, it.numDiscarded());
            assertEquals(1 + 1 + 2, it.numBatches());
            assertEquals(6, it.defaultBucketKey());
        }
        assertThrows(IllegalArgumentException.class, () -> new BucketSentenceIter(sentences(1, 2, 3), 2), "no length occurs twice");
    }

    /** TN layout gives (length, batch) arrays: the transpose of NT. */
    @Test
    void timeMajorLayoutTransposes() {
        int[][] s = sentences(3, 4, 2, 4);
        try (BucketSentenceIter nt = iter(s, 2, new int[] {4}, "NT", 9); BucketSentenceIter tn = iter(s, 2, new int[] {4}, "TN", 9)) {
            assertEquals(List.of(new DataDesc("data", new long[] {4, 2}, DType.FLOAT32, "TN")), tn.provideData());
            assertEquals(1, tn.provideData().get(0).batchAxis());
            while (nt.hasNext()) {
                try (DataBatch a = nt.next(); DataBatch b = tn.next()) {
                    assertArrayEquals(new long[] {4, 2}, b.data().get(0).shape().dims());
                    float[] x = a.data().get(0).toFloatArray();
                    float[] y = b.data().get(0).toFloatArray();
                    float[] lx = a.label().get(0).toFloatArray();
                    float[] ly = b.label().get(0).toFloatArray();
                    for (int n = 0; n < 2; n++) {
                        for (int t = 0; t < 4; t++) {
                            assertEquals(x[n * 4 + t], y[t * 2 + n]);
                            assertEquals(lx[n * 4 + t], ly[t * 2 + n]);
                        }
                    }
                }
            }
            assertFalse(tn.hasNext());
        }
        assertThrows(IllegalArgumentException.class, () -> iter(s, 2, new int[] {4}, "NCHW", 0));
    }

    /** reset() reshuffles batch order and bucket contents with the seeded generator; every full batch is served once per epoch. */
    @Test
    void resetShufflesReproducibly() {
        int[] lens = new int[60];
        for (int i = 0; i < lens.length; i++) {
            lens[i] = 1 + (i * 7) % 10;
        }
        int[][] s = sentences(lens);
        List<String> a = epochs(s, 11);
        assertEquals(a, epochs(s, 11), "same seed, same batches");
        assertNotEquals(a, epochs(s, 12), "another seed, another order");
        assertNotEquals(a.get(0), a.get(1), "each reset reshuffles");
    }

    private static List<String> epochs(int[][] s, long seed) {
        List<String> out = new ArrayList<>();
        try (BucketSentenceIter it = iter(s, 3, new int[] {3, 6, 10}, "NT", seed)) {
            for (int e = 0; e < 2; e++) {
                StringBuilder sb = new StringBuilder();
                int batches = 0;
                int sentencesSeen = 0;
                while (it.hasNext()) {
                    try (DataBatch b = it.next()) {
                        float[] d = b.data().get(0).toFloatArray();
                        int key = (Integer) b.bucketKey();
                        for (int n = 0; n < 3; n++) {
                            sb.append((int) d[n * key] / 100).append(',');
                            sentencesSeen++;
                        }
                        sb.append('|');
                        batches++;
                    }
                }
                assertEquals(it.numBatches(), batches);
                int full = 0;
                for (int c : it.bucketSizes()) {
                    full += c / 3 * 3;
                }
                assertEquals(full, sentencesSeen);
                out.add(sb.toString());
                it.reset();
            }
        }
        return out;
    }

    /** On real text (tiny-shakespeare lines coded as bytes): counts add up and the default bucket is the largest. */
    @Test
    void realCorpusCountsAddUp() throws IOException {
        Path f = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "tiny-shakespeare", "input.txt");
        List<int[]> lines = new ArrayList<>();
        for (String l : Files.readAllLines(f, StandardCharsets.UTF_8)) {
            if (!l.isEmpty()) {
                lines.add(l.chars().toArray());
            }
            if (lines.size() == 5000) {
                break;
            }
        }
        int[][] s = lines.toArray(new int[0][]);
        int[] buckets = {10, 20, 30, 40};
        try (BucketSentenceIter it = iter(s, 16, buckets, "NT", 3)) {
            int kept = 0;
            int longer = 0;
            for (int[] l : s) {
                if (l.length <= 40) {
                    kept++;
                } else {
                    longer++;
                }
            }
            assertEquals(longer, it.numDiscarded());
            assertEquals(kept, java.util.Arrays.stream(it.bucketSizes()).sum());
            int expectBatches = java.util.Arrays.stream(it.bucketSizes()).map(c -> c / 16).sum();
            assertEquals(expectBatches, it.numBatches());
            assertEquals(40, it.defaultBucketKey());
            int n = 0;
            while (it.hasNext()) {
                try (DataBatch b = it.next()) {
                    n++;
                }
            }
            assertEquals(expectBatches, n);
            assertTrue(n > 100, "batches " + n);
        }
    }
}
