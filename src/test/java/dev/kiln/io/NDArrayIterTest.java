package dev.kiln.io;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(NoLeaks.class)
class NDArrayIterTest {
    /** One batch reduced to Java values: first data array, first label array (or null), pad. */
    record B(float[] data, float[] label, int pad) {
        @Override
        public String toString() {
            return Arrays.toString(data) + (label == null ? "" : " L" + Arrays.toString(label)) + " pad " + pad;
        }
    }

    static List<B> epoch(DataIter it) {
        List<B> out = new ArrayList<>();
        for (DataBatch b : it) {
            try (b) {
                out.add(new B(b.data().get(0).toFloatArray(), b.label().isEmpty() ? null : b.label().get(0).toFloatArray(), b.pad()));
            }
        }
        return out;
    }

    static float[] range(int from, int to) {
        float[] f = new float[to - from];
        for (int i = 0; i < f.length; i++) {
            f[i] = from + i;
        }
        return f;
    }

    static float[] f(float... v) {
        return v;
    }

    static void assertEpoch(List<B> got, float[][] rows, int[] pads) {
        assertEquals(rows.length, got.size(), "batches in " + got);
        for (int i = 0; i < rows.length; i++) {
            assertArrayEquals(rows[i], got.get(i).data(), "data of batch " + i + " in " + got);
            assertArrayEquals(rows[i], got.get(i).label(), "label of batch " + i + " (labels = items)");
            assertEquals(pads[i], got.get(i).pad(), "pad of batch " + i + " in " + got);
        }
    }

    static NDArrayIter tenItems(String mode) {
        return NDArrayIter.builder().setData(range(0, 10), 10).optLabel(range(0, 10)).setBatchSize(4).optLastBatchHandle(mode).build();
    }

    // spec 6.2 table: 10 items 0..9, batch 4, labels = items (verified on MXNet 1.9)
    @Test
    void epochTablePad() {
        try (NDArrayIter it = tenItems("pad")) {
            for (int e = 0; e < 3; e++) {
                assertEpoch(epoch(it), new float[][] {range(0, 4), range(4, 8), f(8, 9, 0, 1)}, new int[] {0, 0, 2});
                it.reset();
            }
        }
    }

    @Test
    void epochTableDiscard() {
        try (NDArrayIter it = tenItems("discard")) {
            for (int e = 0; e < 3; e++) {
                assertEpoch(epoch(it), new float[][] {range(0, 4), range(4, 8)}, new int[] {0, 0});
                it.reset();
            }
        }
    }

    @Test
    void epochTableRollOver() {
        try (NDArrayIter it = tenItems("roll_over")) {
            assertEpoch(epoch(it), new float[][] {range(0, 4), range(4, 8)}, new int[] {0, 0});
            it.reset();
            assertEpoch(epoch(it), new float[][] {f(8, 9, 0, 1), range(2, 6), range(6, 10)}, new int[] {2, 0, 0});
            it.reset();
            assertEpoch(epoch(it), new float[][] {range(0, 4), range(4, 8)}, new int[] {0, 0});
            it.reset();
            assertEpoch(epoch(it), new float[][] {f(8, 9, 0, 1), range(2, 6), range(6, 10)}, new int[] {2, 0, 0});
        }
    }

    @Test
    void hardResetDropsTheRolledOverTail() {
        try (NDArrayIter it = tenItems("roll_over")) {
            epoch(it);
            it.hardReset();
            assertEpoch(epoch(it), new float[][] {range(0, 4), range(4, 8)}, new int[] {0, 0});
        }
    }

    @Test
    void hasNextIsIdempotentAndNextThrowsAtTheEnd() {
        try (NDArrayIter it = tenItems("roll_over")) {
            for (int k = 0; k < 2; k++) {
                assertTrue(it.hasNext());
                assertTrue(it.hasNext());
                it.next().close();
            }
            assertFalse(it.hasNext());
            assertFalse(it.hasNext());
            NoSuchElementException e = assertThrows(NoSuchElementException.class, it::next);
            assertTrue(e.getMessage().contains("reset"), e.getMessage());
            it.reset(); // the tail cached by hasNext() rolls over
            try (DataBatch b = it.next()) {
                assertArrayEquals(f(8, 9, 0, 1), b.data().get(0).toFloatArray());
                assertEquals(2, b.pad());
            }
        }
    }

    // test_io.py test_NDArrayIter: 1000 items, batch 128; image-like data (1000, 2, 2); labels = i / 100
    @Test
    void thousandItemsBatch128CountsAsMxnet() {
        float[] data = new float[1000 * 4];
        float[] label = new float[1000];
        for (int i = 0; i < 1000; i++) {
            Arrays.fill(data, 4 * i, 4 * i + 4, i);
            label[i] = i;
        }
        String[] modes = {"pad", "discard", "roll_over"};
        int[] batches = {8, 7, 7};
        int[][] classCounts = {{124, 100}, {100, 96}, {100, 96}}; // classes 0 and 8
        float[] lastPad = null;
        for (int m = 0; m < 3; m++) {
            try (NDArrayIter it = NDArrayIter.builder().setData(data, 1000, 2, 2).optLabel(label).setBatchSize(128)
                    .optLastBatchHandle(modes[m]).build()) {
                assertEquals("[DataDesc[data,(128, 2, 2),float32,NCHW]]", it.provideData().toString());
                assertEquals("[DataDesc[softmax_label,(128,),float32,NCHW]]", it.provideLabel().toString());
                int[] counts = new int[10];
                int n = 0;
                for (DataBatch b : it) {
                    try (b) {
                        assertArrayEquals(new long[] {128, 2, 2}, b.data().get(0).shape().dims());
                        float[] d = b.data().get(0).toFloatArray();
                        float[] l = b.label().get(0).toFloatArray();
                        for (int i = 0; i < 128; i++) {
                            assertEquals(l[i], d[4 * i + 3], "data matches its label");
                            counts[(int) l[i] / 100]++;
                        }
                        n++;
                        if (m == 0 && n == 8) {
                            lastPad = d;
                            assertEquals(24, b.pad());
                        }
                    }
                }
                assertEquals(batches[m], n, modes[m]);
                assertEquals(classCounts[m][0], counts[0], modes[m]);
                assertEquals(classCounts[m][1], counts[8], modes[m]);
                if (m == 2) {
                    it.reset();
                    try (DataBatch b = it.next()) {
                        assertArrayEquals(lastPad, b.data().get(0).toFloatArray(), "rolled batch equals pad mode's last batch");
                        assertEquals(104, b.pad(), "roll_over pad = number of tail items (1000 - 7 * 128)");
                    }
                }
            }
        }
    }

    // test_io.py: 10 items, batch 205, pad mode -> data tiled 20 times + items 0..4
    @Test
    void padTilesTheDataWhenThePadExceedsIt() {
        try (NDArrayIter it = NDArrayIter.builder().setData(range(0, 10), 10, 1).optLabel(range(0, 10)).setBatchSize(205).build()) {
            List<B> ep = epoch(it);
            assertEquals(1, ep.size());
            float[] expect = new float[205];
            for (int j = 0; j < 205; j++) {
                expect[j] = j % 10;
            }
            assertArrayEquals(expect, ep.get(0).data());
            assertArrayEquals(expect, ep.get(0).label());
            assertEquals(195, ep.get(0).pad());
        }
    }

    @Test
    void discardWithBatchLargerThanDataHasNoBatches() {
        try (NDArrayIter it = NDArrayIter.builder().setData(range(0, 3), 3).setBatchSize(4).optLastBatchHandle("discard").build()) {
            assertEquals(0, epoch(it).size());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NDArrayIter.builder().setData(range(0, 3), 3).setBatchSize(4).optLastBatchHandle("roll_over").build());
        assertTrue(e.getMessage().contains("roll_over"), e.getMessage());
    }

    // np.random.seed(0); idx = arange(10); per reset: np.random.shuffle(idx); data = data[idx] (MXNet's _shuffle_data)
    @Test
    void shuffleReproducesMxnetOrdersForNumpySeed() {
        float[][] expect = {f(2, 8, 4, 9, 1, 6, 7, 3, 0, 5), f(5, 7, 0, 1, 6, 2, 4, 3, 9, 8), f(9, 6, 1, 2, 5, 4, 8, 0, 7, 3)};
        try (NDArrayIter it = NDArrayIter.builder().setData(range(0, 10), 10).setBatchSize(10).optShuffle(true).optSeed(0).build()) {
            for (float[] e : expect) {
                assertArrayEquals(e, epoch(it).get(0).data());
                it.reset();
            }
        }
        // 1000 items, seed 42: first 12 of epochs 0 and 1 (computed with NumPy 2.4 the same way)
        try (NDArrayIter it = NDArrayIter.builder().setData(range(0, 1000), 1000).setBatchSize(12).optShuffle(true).optSeed(42).build()) {
            try (DataBatch b = it.next()) {
                assertArrayEquals(f(521, 737, 740, 660, 411, 678, 626, 513, 859, 136, 811, 76), b.data().get(0).toFloatArray());
            }
            epoch(it);
            it.reset();
            try (DataBatch b = it.next()) {
                assertArrayEquals(f(907, 171, 123, 4, 881, 61, 168, 687, 954, 424, 528, 665), b.data().get(0).toFloatArray());
            }
        }
    }

    @Test
    void shuffleKeepsDataLabelPairsAndRepeatsForASeed() {
        int n = 50;
        float[] data = new float[n * 3];
        float[] label = new float[n];
        for (int i = 0; i < n; i++) {
            data[3 * i] = i;
            data[3 * i + 1] = -i;
            data[3 * i + 2] = 1000 + i;
            label[i] = i;
        }
        List<List<Float>> orders = new ArrayList<>();
        for (int run = 0; run < 2; run++) {
            try (NDArrayIter it = NDArrayIter.builder().setData(data, n, 3).optLabel(label).setBatchSize(7).optShuffle(true).optSeed(1234)
                    .build()) {
                for (int e = 0; e < 3; e++) {
                    List<Float> order = new ArrayList<>();
                    int[] seen = new int[n];
                    for (B b : epoch(it)) {
                        for (int i = 0; i < b.label().length; i++) {
                            float id = b.label()[i];
                            assertEquals(id, b.data()[3 * i]);
                            assertEquals(-id, b.data()[3 * i + 1], 0f);
                            assertEquals(1000 + id, b.data()[3 * i + 2]);
                            if (i < 7 - b.pad()) {
                                seen[(int) id]++;
                                order.add(id);
                            }
                        }
                    }
                    for (int s : seen) {
                        assertEquals(1, s, "every example once per epoch");
                    }
                    if (run == 0) {
                        orders.add(order);
                    } else {
                        assertEquals(orders.get(e), order, "same seed, same order in epoch " + e);
                    }
                    it.reset();
                }
            }
        }
        assertNotEquals(orders.get(0), orders.get(1), "reshuffled at every reset");
        List<Float> sorted = new ArrayList<>(orders.get(0));
        sorted.sort(null);
        assertNotEquals(sorted, orders.get(0), "shuffled");
        try (NDArrayIter other = NDArrayIter.builder().setData(data, n, 3).optLabel(label).setBatchSize(50).optShuffle(true).optSeed(99).build();
             DataBatch b = other.next()) {
            float[] l = b.label().get(0).toFloatArray();
            List<Float> o = new ArrayList<>();
            for (float v : l) {
                o.add(v);
            }
            assertNotEquals(orders.get(0), o, "another seed, another order");
        }
    }

    @Test
    void mapInputsAreSortedByName() {
        try (NDArray b = NDArray.create(range(0, 4), 4); NDArray a = NDArray.create(range(10, 14), 4);
             NDArray lz = NDArray.create(range(20, 24), 4); NDArray ly = NDArray.create(range(30, 34), 4)) {
            Map<String, NDArray> data = new LinkedHashMap<>();
            data.put("b", b);
            data.put("a", a);
            Map<String, NDArray> label = new LinkedHashMap<>();
            label.put("z", lz);
            label.put("y", ly);
            try (NDArrayIter it = new NDArrayIter(data, label, 2, false, "pad"); DataBatch batch = it.next()) {
                assertEquals("[DataDesc[a,(2,),float32,NCHW], DataDesc[b,(2,),float32,NCHW]]", it.provideData().toString());
                assertEquals("[DataDesc[y,(2,),float32,NCHW], DataDesc[z,(2,),float32,NCHW]]", it.provideLabel().toString());
                assertArrayEquals(f(10, 11), batch.data().get(0).toFloatArray());
                assertArrayEquals(f(0, 1), batch.data().get(1).toFloatArray());
                assertArrayEquals(f(30, 31), batch.label().get(0).toFloatArray());
                assertArrayEquals(f(20, 21), batch.label().get(1).toFloatArray());
                assertEquals(it.provideData(), batch.provideData());
            }
        }
    }

    @Test
    void listInputsGetPositionalNamesSortedAsStrings() {
        List<NDArray> arrays = new ArrayList<>();
        try {
            for (int i = 0; i < 11; i++) {
                arrays.add(NDArray.create(f(i, i), 2));
            }
            try (NDArrayIter it = NDArrayIter.builder().setData(arrays.subList(0, 2)).setBatchSize(2).build()) {
                assertEquals(List.of("_0_data", "_1_data"), it.provideData().stream().map(DataDesc::name).toList());
                assertTrue(it.provideLabel().isEmpty());
            }
            try (NDArrayIter it = NDArrayIter.builder().setData(arrays).optLabel(arrays.subList(0, 1)).setBatchSize(2).build();
                 DataBatch b = it.next()) {
                List<String> names = it.provideData().stream().map(DataDesc::name).toList();
                assertEquals(List.of("_0_data", "_10_data", "_1_data", "_2_data"), names.subList(0, 4), "Python's sorted()");
                assertArrayEquals(f(10, 10), b.data().get(1).toFloatArray());
                assertEquals("softmax_label", it.provideLabel().get(0).name(), "a list of one array keeps the default name");
            }
        } finally {
            arrays.forEach(NDArray::close);
        }
    }

    @Test
    void namedBuilderInputsAndCustomNames() {
        try (NDArrayIter it = NDArrayIter.builder().addData("x2", range(0, 6), 3, 2).addData("x1", range(0, 3), 3)
                .addLabel("t", range(0, 3), 3).setBatchSize(3).build()) {
            assertEquals("[DataDesc[x1,(3,),float32,NCHW], DataDesc[x2,(3, 2),float32,NCHW]]", it.provideData().toString());
            assertEquals("t", it.provideLabel().get(0).name());
        }
        try (NDArrayIter it = NDArrayIter.builder().setData(new float[][] {{1, 2}, {3, 4}, {5, 6}}).optLabel(new int[] {7, 8, 9})
                .optDataName("x").optLabelName("y").setBatchSize(2).build(); DataBatch b = it.next()) {
            assertEquals("[DataDesc[x,(2, 2),float32,NCHW]]", it.provideData().toString());
            assertEquals("[DataDesc[y,(2,),float32,NCHW]]", it.provideLabel().toString());
            assertArrayEquals(f(1, 2, 3, 4), b.data().get(0).toFloatArray());
            assertEquals(DType.FLOAT32, b.label().get(0).dtype(), "int labels become float32");
            assertArrayEquals(f(7, 8), b.label().get(0).toFloatArray());
        }
        assertThrows(IllegalStateException.class, () -> NDArrayIter.builder().setData(range(0, 2), 2).addData("x", range(0, 2), 2));
        IllegalArgumentException dup = assertThrows(IllegalArgumentException.class,
                () -> NDArrayIter.builder().addData("x", range(0, 2), 2).addData("x", range(0, 2), 2).build());
        assertTrue(dup.getMessage().contains("'x'"), dup.getMessage());
    }

    @Test
    void ndarrayInputsKeepTheirDtypeAndAreCopied() {
        NDArray x = NDArray.create(new double[] {1, 2, 3, 4, 5, 6}, 3, 2);
        NDArray y = NDArray.create(f(0, 1, 2), 3);
        NDArrayIter it = new NDArrayIter(x, y, 2);
        x.close(); // the iterator copied the inputs
        y.close();
        try (it) {
            assertEquals(DType.FLOAT64, it.provideData().get(0).dtype());
            try (DataBatch b = it.next()) {
                assertEquals(DType.FLOAT64, b.data().get(0).dtype());
                assertArrayEquals(new double[] {1, 2, 3, 4}, b.data().get(0).toDoubleArray());
            }
            try (DataBatch b = it.next()) {
                assertArrayEquals(new double[] {5, 6, 1, 2}, b.data().get(0).toDoubleArray());
                assertArrayEquals(f(2, 0), b.label().get(0).toFloatArray());
                assertEquals(1, b.pad());
                assertNull(b.index(), "NDArrayIter gives no index (as MXNet)");
            }
        }
    }

    @Test
    void batchesAreNewArraysOwnedByTheCaller() {
        try (NDArrayIter it = tenItems("pad")) {
            DataBatch a = it.next();
            DataBatch b = it.next();
            a.close();
            assertArrayEquals(range(4, 8), b.data().get(0).toFloatArray(), "closing one batch does not touch another");
            b.close();
            it.reset();
            try (DataBatch c = it.next()) {
                assertArrayEquals(range(0, 4), c.data().get(0).toFloatArray());
            }
        }
    }

    // layout TNC: examples along axis 1 (MXNet 1.9 slices along the layout's batch axis)
    @Test
    void layoutBatchAxis() {
        int t = 3, n = 5, c = 2;
        float[] data = new float[t * n * c];
        float[] label = new float[t * n];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < n; j++) {
                for (int k = 0; k < c; k++) {
                    data[(i * n + j) * c + k] = 100 * i + 10 * j + k;
                }
                label[i * n + j] = 10 * i + j;
            }
        }
        try (NDArrayIter it = NDArrayIter.builder().setData(data, t, n, c).optLabel(label, t, n).setBatchSize(2).optLayout("TNC")
                .build()) {
            assertEquals("[DataDesc[data,(3, 2, 2),float32,TNC]]", it.provideData().toString());
            assertEquals("[DataDesc[softmax_label,(3, 2),float32,TNC]]", it.provideLabel().toString());
            List<B> ep = epoch(it);
            assertEquals(3, ep.size());
            // batch 1 = examples 2, 3; the last = examples 4, 0 (pad 1)
            assertArrayEquals(f(20, 21, 30, 31, 120, 121, 130, 131, 220, 221, 230, 231), ep.get(1).data());
            assertArrayEquals(f(2, 3, 12, 13, 22, 23), ep.get(1).label());
            assertArrayEquals(f(40, 41, 0, 1, 140, 141, 100, 101, 240, 241, 200, 201), ep.get(2).data());
            assertEquals(1, ep.get(2).pad());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NDArrayIter.builder().setData(data, t, n, c).optLabel(range(0, 5)).optLayout("TNC").build());
        assertTrue(e.getMessage().contains("softmax_label") && e.getMessage().contains("axis 1"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> NDArrayIter.builder().setData(data, t, n, c).optLayout("TC").build());
    }

    @Test
    void layoutBatchAxisWithNdarrayInput() {
        float[] v = range(0, 24);
        try (NDArray x = NDArray.create(v, 2, 3, 4);
             NDArrayIter it = NDArrayIter.builder().setData(x).setBatchSize(2).optLayout("TNC").optLastBatchHandle("discard").build();
             DataBatch b = it.next()) {
            assertArrayEquals(new long[] {2, 2, 4}, b.data().get(0).shape().dims());
            assertArrayEquals(f(0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 16, 17, 18, 19), b.data().get(0).toFloatArray());
            assertFalse(it.hasNext());
        }
    }

    @Test
    void clearErrorsForBadInput() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NDArrayIter.builder().setData(range(0, 4), 4).optLabel(range(0, 3)).build());
        assertTrue(e.getMessage().contains("softmax_label") && e.getMessage().contains("3 examples") && e.getMessage().contains("4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> NDArrayIter.builder().setData(range(0, 4), 4).optLastBatchHandle("keep"));
        assertTrue(e.getMessage().contains("'keep'") && e.getMessage().contains("roll_over"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> NDArrayIter.builder().setData(range(0, 4), 4).setBatchSize(0).build());
        assertTrue(e.getMessage().contains("batch_size"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> NDArrayIter.builder().setData(range(0, 4), 2, 3));
        assertTrue(e.getMessage().contains("(2, 3)") && e.getMessage().contains("4 given"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> NDArrayIter.builder().build());
        assertTrue(e.getMessage().contains("data"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> NDArrayIter.builder().setData(new float[][] {{1, 2}, {3}}));
        assertTrue(e.getMessage().contains("ragged"), e.getMessage());
        NDArray closed = NDArray.zeros(2);
        closed.close();
        assertThrows(IllegalStateException.class, () -> NDArrayIter.builder().setData(closed));
        NDArrayIter it = tenItems("pad");
        it.close();
        it.close();
        assertThrows(IllegalStateException.class, it::hasNext);
    }
}
