package dev.kiln.io;

import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(NoLeaks.class)
class MNISTIterTest {
    static Path dir;

    @TempDir
    Path tmp;

    @BeforeAll
    static void findData() {
        for (Path p : new Path[] {Path.of("data", "mnist"), Path.of(System.getProperty("kiln.shared", "../shared"), "data", "mnist")}) {
            if (Files.exists(p.resolve("train-images-idx3-ubyte.gz"))) {
                dir = p;
                return;
            }
        }
        Assumptions.abort("MNIST idx files not found in data/mnist or shared/data/mnist");
    }

    static MNISTIter.Builder train() {
        return MNISTIter.builder().setImage(dir.resolve("train-images-idx3-ubyte.gz")).setLabel(dir.resolve("train-labels-idx1-ubyte.gz"))
                .optSilent(true);
    }

    static MNISTIter.Builder test() {
        return MNISTIter.builder().setImage(dir.resolve("t10k-images-idx3-ubyte.gz")).setLabel(dir.resolve("t10k-labels-idx1-ubyte.gz"))
                .optSilent(true);
    }

    static float[] labelsOfEpoch(DataIter it) {
        float[] all = new float[0];
        int n = 0;
        for (DataBatch b : it) {
            try (b) {
                float[] l = b.label().get(0).toFloatArray();
                all = Arrays.copyOf(all, n + l.length);
                System.arraycopy(l, 0, all, n, l.length);
                n += l.length;
            }
        }
        return all;
    }

    // test_io.py test_MNISTIter: 60000 / 100 = 600 batches; the label order repeats after reset
    @Test
    void sixHundredBatchesAndTheOrderRepeatsAfterReset() throws IOException {
        try (MNISTIter it = train().setBatchSize(100).optFlat(true).build()) {
            assertEquals(60000, it.numExamples());
            float[] first = labelsOfEpoch(it);
            assertEquals(60000, first.length, "600 batches of 100");
            it.reset();
            float[] second = labelsOfEpoch(it);
            assertArrayEquals(first, second, "shuffled once at construction, not per epoch");
            int[] counts = new int[10];
            for (float l : first) {
                counts[(int) l]++;
            }
            assertArrayEquals(new int[] {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}, counts);
        }
    }

    // the first 30 labels of the test set under MXNet 1.9.1's MNISTIter(seed=0, batch_size=100) (read from libmxnet)
    @Test
    void shuffleOrderEqualsMxnetForSeed0() throws IOException {
        try (MNISTIter it = test().setBatchSize(100).build(); DataBatch b = it.next()) {
            float[] l = Arrays.copyOf(b.label().get(0).toFloatArray(), 30);
            assertArrayEquals(new float[] {8, 2, 1, 5, 6, 2, 9, 4, 7, 3, 1, 4, 0, 2, 1, 3, 2, 7, 4, 8, 3, 9, 9, 1, 7, 0, 5, 2, 0, 8}, l);
        }
        try (MNISTIter a = test().setBatchSize(100).optSeed(5).build(); MNISTIter c = test().setBatchSize(100).optSeed(5).build();
             MNISTIter other = test().setBatchSize(100).optSeed(6).build()) {
            float[] la = labelsOfEpoch(a);
            assertArrayEquals(la, labelsOfEpoch(c), "same seed, same order");
            assertFalse(Arrays.equals(la, labelsOfEpoch(other)), "another seed, another order");
        }
    }

    @Test
    void pixelsAreRawBytesOver256() throws IOException {
        Mnist.Idx raw = Mnist.readIdx(dir.resolve("t10k-images-idx3-ubyte.gz"));
        Mnist.Idx rawLabels = Mnist.readIdx(dir.resolve("t10k-labels-idx1-ubyte.gz"));
        try (MNISTIter it = test().setBatchSize(50).build()) {
            int checked = 0;
            for (int k = 0; k < 3 && it.hasNext(); k++) {
                try (DataBatch b = it.next()) {
                    float[] px = b.data().get(0).toFloatArray();
                    float[] lb = b.label().get(0).toFloatArray();
                    long[] ids = b.index();
                    for (int i = 0; i < 50; i++) {
                        int id = (int) ids[i];
                        assertEquals(rawLabels.data()[id] & 0xff, (int) lb[i]);
                        for (int p = 0; p < 784; p++) {
                            int byteValue = raw.data()[id * 784 + p] & 0xff;
                            assertEquals(byteValue / 256f, px[i * 784 + p], "example " + id + " pixel " + p);
                        }
                        checked++;
                    }
                }
            }
            assertEquals(150, checked);
        }
        try (MNISTIter it = test().setBatchSize(10).build(); DataBatch b = it.next()) {
            float max = 0;
            for (float v : b.data().get(0).toFloatArray()) {
                max = Math.max(max, v);
            }
            assertEquals(255f / 256f, max, "white is 255/256, not 1");
        }
    }

    @Test
    void flatAnd4dShapes() throws IOException {
        try (MNISTIter it = test().setBatchSize(32).build(); DataBatch b = it.next()) {
            assertEquals("[DataDesc[data,(32, 1, 28, 28),float32,NCHW]]", it.provideData().toString());
            assertEquals("[DataDesc[softmax_label,(32,),float32,NCHW]]", it.provideLabel().toString());
            assertEquals("DataBatch: data shapes: [(32, 1, 28, 28)] label shapes: [(32,)]", b.toString());
            assertEquals(0, b.pad());
        }
        try (MNISTIter it = test().setBatchSize(32).optFlat(true).optDataName("x").build(); DataBatch b = it.next()) {
            assertEquals("[DataDesc[x,(32, 784),float32,NCHW]]", it.provideData().toString());
            assertArrayEquals(new long[] {32, 784}, b.data().get(0).shape().dims());
        }
    }

    @Test
    void lastIncompleteBatchIsDroppedAndNoShuffleKeepsFileOrder() throws IOException {
        try (MNISTIter it = test().setBatchSize(128).optShuffle(false).build()) {
            int n = 0;
            long expectId = 0;
            for (DataBatch b : it) {
                try (b) {
                    for (long id : b.index()) {
                        assertEquals(expectId++, id);
                    }
                    n++;
                }
            }
            assertEquals(10000 / 128, n);
            assertThrows(java.util.NoSuchElementException.class, it::next);
        }
    }

    @Test
    void shardsAreContiguousAndCoverTheData() throws IOException {
        Set<Long> seen = new HashSet<>();
        int[] sizes = new int[3];
        for (int p = 0; p < 3; p++) {
            try (MNISTIter it = test().setBatchSize(1).optNumParts(3).optPartIndex(p).build()) {
                sizes[p] = it.numExamples();
                long lo = (long) (10000 / 3.0 * p);
                long hi = (long) (10000 / 3.0 * (p + 1));
                assertEquals(hi - lo, sizes[p]);
                for (DataBatch b : it) {
                    try (b) {
                        long id = b.index()[0];
                        assertTrue(id >= lo && id < hi, "id " + id + " in shard " + p);
                        assertTrue(seen.add(id));
                    }
                }
            }
        }
        assertArrayEquals(new int[] {3333, 3333, 3334}, sizes);
        assertEquals(10000, seen.size());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> test().optNumParts(2).optPartIndex(2).build());
        assertTrue(e.getMessage().contains("part_index"), e.getMessage());
    }

    @Test
    void plainIdxFilesAndTheGzFallback() throws IOException {
        Path img = tmp.resolve("t10k-images-idx3-ubyte");
        try (InputStream in = new GZIPInputStream(Files.newInputStream(dir.resolve("t10k-images-idx3-ubyte.gz")))) {
            Files.copy(in, img);
        }
        // label given without .gz: the .gz next to it is used
        Path lab = tmp.resolve("t10k-labels-idx1-ubyte");
        Files.copy(dir.resolve("t10k-labels-idx1-ubyte.gz"), tmp.resolve("t10k-labels-idx1-ubyte.gz"));
        try (MNISTIter a = MNISTIter.builder().setImage(img).setLabel(lab).setBatchSize(100).optSilent(true).build();
             MNISTIter b = test().setBatchSize(100).build()) {
            assertArrayEquals(labelsOfEpoch(b), labelsOfEpoch(a));
        }
    }

    @Test
    void truncatedOrForeignFilesFailClearly() throws IOException {
        Path img = tmp.resolve("imgs");
        byte[] full;
        try (InputStream in = new GZIPInputStream(Files.newInputStream(dir.resolve("t10k-images-idx3-ubyte.gz")))) {
            full = in.readAllBytes();
        }
        Files.write(img, Arrays.copyOf(full, 16 + 784 * 100 + 5));
        IOException e = assertThrows(IOException.class, () -> test().setImage(img).build());
        assertTrue(e.getMessage().contains(img.toString()) && e.getMessage().contains("truncated"), e.getMessage());
        Files.write(img, Arrays.copyOf(full, 10));
        e = assertThrows(IOException.class, () -> test().setImage(img).build());
        assertTrue(e.getMessage().contains("truncated idx header"), e.getMessage());
        Files.writeString(img, "1,2,3\n");
        e = assertThrows(IOException.class, () -> test().setImage(img).build());
        assertTrue(e.getMessage().contains("not an idx file"), e.getMessage());
        // labels given as images
        e = assertThrows(IOException.class, () -> test().setImage(dir.resolve("t10k-labels-idx1-ubyte.gz")).build());
        assertTrue(e.getMessage().contains("not an MNIST image file"), e.getMessage());
        // 60000 labels for 10000 images
        MalformedDataException m = assertThrows(MalformedDataException.class, () -> test().setLabel(dir.resolve("train-labels-idx1-ubyte.gz")).build());
        assertTrue(m.getMessage().contains("60000 labels") && m.getMessage().contains("10000 images"), m.getMessage());
        e = assertThrows(IOException.class, () -> test().setImage(tmp.resolve("missing")).build());
        assertTrue(e.getMessage().contains("missing"), e.getMessage());
    }

    @Test
    void mnistLoadStillScalesBy255() throws IOException {
        Mnist.Data d = Mnist.load(dir, "t10k");
        assertEquals(10000, d.count());
        assertEquals(28, d.rows());
        float max = 0;
        for (int i = 0; i < 784; i++) {
            max = Math.max(max, d.images()[i]);
        }
        assertEquals(1f, max);
        assertEquals(7f, d.labels()[0]);
        assertNotEquals(0, d.labels()[1]);
    }
}
