package dev.kiln.io;

import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.kiln.io.NDArrayIterTest.epoch;
import static dev.kiln.io.NDArrayIterTest.f;
import static dev.kiln.io.NDArrayIterTest.range;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(NoLeaks.class)
class ResizePrefetchTest {
    @TempDir
    Path dir;

    static NDArrayIter tenItems(int batch, String mode) {
        return NDArrayIter.builder().setData(range(0, 10), 10).optLabel(range(0, 10)).setBatchSize(batch).optLastBatchHandle(mode).build();
    }

    // ---- ResizeIter ----------------------------------------------------------------------------

    @Test
    void resizeLongerThanAnEpochResetsTheInnerIterator() {
        try (ResizeIter it = new ResizeIter(tenItems(4, "pad"), 5)) {
            assertEquals(4, it.batchSize());
            assertEquals("[DataDesc[data,(4,),float32,NCHW]]", it.provideData().toString());
            var ep = epoch(it);
            assertEquals(5, ep.size());
            assertArrayEquals(f(8, 9, 0, 1), ep.get(2).data());
            assertArrayEquals(range(0, 4), ep.get(3).data(), "inner reset after its 3 batches");
            assertArrayEquals(range(4, 8), ep.get(4).data());
            assertThrows(NoSuchElementException.class, it::next);
            it.reset(); // also resets the inner iterator
            ep = epoch(it);
            assertEquals(5, ep.size());
            assertArrayEquals(range(0, 4), ep.get(0).data());
        }
    }

    @Test
    void resizeShorterThanAnEpochAndWithoutInternalReset() {
        try (ResizeIter it = new ResizeIter(tenItems(2, "pad"), 2, false)) {
            assertArrayEquals(range(0, 2), epoch(it).get(0).data());
            it.reset(); // the inner iterator continues where it was
            var ep = epoch(it);
            assertEquals(2, ep.size());
            assertArrayEquals(range(4, 6), ep.get(0).data());
            assertArrayEquals(range(6, 8), ep.get(1).data());
        }
        try (ResizeIter it = new ResizeIter(tenItems(2, "pad"), 2, true)) {
            epoch(it);
            it.reset();
            assertArrayEquals(range(0, 2), epoch(it).get(0).data());
        }
    }

    @Test
    void resizeOfAnEmptyIteratorFailsClearly() {
        NDArrayIter empty = NDArrayIter.builder().setData(range(0, 3), 3).setBatchSize(4).optLastBatchHandle("discard").build();
        try (ResizeIter it = new ResizeIter(empty, 3)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, it::hasNext);
            assertTrue(e.getMessage().contains("no batch"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> new ResizeIter(tenItems(2, "pad"), -1));
        NDArrayIter inner = tenItems(2, "pad");
        new ResizeIter(inner, 1).close();
        assertThrows(IllegalStateException.class, inner::hasNext, "closing the ResizeIter closes the wrapped iterator");
    }

    // ---- PrefetchingIter -----------------------------------------------------------------------

    @Test
    void prefetchingGivesTheWrappedIteratorsBatches() {
        for (String mode : new String[] {"pad", "discard", "roll_over"}) {
            try (NDArrayIter plain = NDArrayIter.builder().setData(range(0, 30), 10, 3).optLabel(range(0, 10)).setBatchSize(4)
                    .optShuffle(true).optSeed(3).optLastBatchHandle(mode).build();
                 PrefetchingIter pre = new PrefetchingIter(NDArrayIter.builder().setData(range(0, 30), 10, 3).optLabel(range(0, 10))
                         .setBatchSize(4).optShuffle(true).optSeed(3).optLastBatchHandle(mode).build())) {
                assertEquals(plain.provideData(), pre.provideData());
                assertEquals(plain.provideLabel(), pre.provideLabel());
                assertEquals(4, pre.batchSize());
                for (int e = 0; e < 3; e++) {
                    var want = epoch(plain);
                    var got = epoch(pre);
                    assertEquals(want.size(), got.size(), mode + " epoch " + e);
                    for (int i = 0; i < want.size(); i++) {
                        assertArrayEquals(want.get(i).data(), got.get(i).data(), mode + " epoch " + e + " batch " + i);
                        assertArrayEquals(want.get(i).label(), got.get(i).label());
                        assertEquals(want.get(i).pad(), got.get(i).pad());
                    }
                    plain.reset();
                    pre.reset();
                }
            }
        }
    }

    @Test
    void prefetchingJoinsSeveralIteratorsAndRenames() {
        NDArrayIter a = NDArrayIter.builder().setData(range(0, 10), 10).optLabel(range(0, 10)).setBatchSize(4).build();
        NDArrayIter b = NDArrayIter.builder().setData(range(100, 120), 10, 2).optLabel(range(50, 60)).setBatchSize(4).build();
        try (PrefetchingIter it = new PrefetchingIter(List.of(a, b), List.of(Map.of("data", "data_1"), Map.of("data", "data_2")),
                List.of(Map.of(), Map.of("softmax_label", "label_2")))) {
            assertEquals("[DataDesc[data_1,(4,),float32,NCHW], DataDesc[data_2,(4, 2),float32,NCHW]]", it.provideData().toString());
            assertEquals("[DataDesc[softmax_label,(4,),float32,NCHW], DataDesc[label_2,(4,),float32,NCHW]]", it.provideLabel().toString());
            int n = 0;
            for (DataBatch batch : it) {
                try (batch) {
                    assertEquals(2, batch.data().size());
                    assertEquals(2, batch.label().size());
                    assertEquals(it.provideData(), batch.provideData());
                    if (n == 2) {
                        assertArrayEquals(f(8, 9, 0, 1), batch.data().get(0).toFloatArray());
                        assertArrayEquals(f(116, 117, 118, 119, 100, 101, 102, 103), batch.data().get(1).toFloatArray());
                        assertArrayEquals(f(58, 59, 50, 51), batch.label().get(1).toFloatArray());
                        assertEquals(2, batch.pad());
                    }
                    n++;
                }
            }
            assertEquals(3, n);
        }
        assertThrows(IllegalArgumentException.class, () -> new PrefetchingIter(List.of()));
    }

    @Test
    void iteratorsThatEndAtDifferentBatchesAreAnError() {
        NDArrayIter a = tenItems(4, "pad");
        NDArrayIter b = tenItems(4, "discard");
        try (PrefetchingIter it = new PrefetchingIter(List.of(a, b))) {
            it.next().close();
            it.next().close();
            IllegalStateException e = assertThrows(IllegalStateException.class, it::hasNext);
            assertTrue(e.getMessage().contains("Number of entry mismatches"), e.getMessage());
        }
        NDArrayIter c = NDArrayIter.builder().setData(range(0, 10), 10).setBatchSize(4).build();
        NDArrayIter d = NDArrayIter.builder().setData(range(0, 11), 11).setBatchSize(4).build();
        try (PrefetchingIter it = new PrefetchingIter(List.of(c, d))) {
            it.next().close();
            it.next().close();
            IllegalStateException e = assertThrows(IllegalStateException.class, it::next);
            assertTrue(e.getMessage().contains("pad 2") && e.getMessage().contains("pad 1"), e.getMessage());
        }
    }

    /** Yields {@code n} batches, then fails with {@code error} (or ends when it is null). */
    static final class Failing extends DataIter {
        final int n;
        final RuntimeException error;
        final AtomicInteger served = new AtomicInteger();
        int i;
        boolean closed;

        Failing(int n, RuntimeException error) {
            this.n = n;
            this.error = error;
        }

        @Override
        public boolean hasNext() {
            if (i == n && error != null) {
                throw error;
            }
            return i < n;
        }

        @Override
        public DataBatch next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            i++;
            served.incrementAndGet();
            return new DataBatch(List.of(NDArray.create(f(i), 1)), null, 0, null, null, provideData(), provideLabel());
        }

        @Override
        public void reset() {
            i = 0;
        }

        @Override
        public int batchSize() {
            return 1;
        }

        @Override
        public List<DataDesc> provideData() {
            return List.of(new DataDesc("data", new long[] {1}));
        }

        @Override
        public List<DataDesc> provideLabel() {
            return List.of();
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    @Test
    void errorsOfTheBackgroundThreadAreRethrown() {
        RuntimeException boom = new MalformedDataException(Path.of("x.csv"), 7, "boom");
        Failing inner = new Failing(2, boom);
        try (PrefetchingIter it = new PrefetchingIter(inner)) {
            try (DataBatch b = it.next()) {
                assertArrayEquals(f(1), b.data().get(0).toFloatArray());
            }
            it.next().close();
            RuntimeException e = assertThrows(RuntimeException.class, it::hasNext);
            assertSame(boom, e, "the same exception object");
            assertSame(boom, assertThrows(RuntimeException.class, it::next), "again until reset");
            it.reset();
            try (DataBatch b = it.next()) {
                assertArrayEquals(f(1), b.data().get(0).toFloatArray(), "reset recovers");
            }
        }
        assertTrue(inner.closed, "closing the PrefetchingIter closes the wrapped iterator");
    }

    @Test
    void closeStopsTheThreadsAndFreesBatchesReadAhead() throws InterruptedException {
        Failing inner = new Failing(100, null);
        PrefetchingIter it = new PrefetchingIter(inner);
        it.next().close();
        // wait until the worker has read ahead one batch (a native array nobody handed out)
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (inner.served.get() < 2 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(2, inner.served.get());
        it.close();
        it.close();
        assertTrue(inner.closed);
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            assertFalse(t.getName().startsWith("kiln-prefetch-") && t.isAlive(), "thread " + t.getName() + " still alive");
        }
        assertThrows(IllegalStateException.class, it::hasNext);
        // NoLeaks checks that the read-ahead batch was closed
    }

    @Test
    void resetMidEpochDiscardsTheReadAheadBatch() {
        try (PrefetchingIter it = new PrefetchingIter(tenItems(2, "pad"))) {
            it.next().close();
            assertTrue(it.hasNext());
            it.reset();
            var ep = epoch(it);
            assertEquals(5, ep.size());
            assertArrayEquals(range(0, 2), ep.get(0).data());
        }
    }

    @Test
    void prefetchingACsvIterWithResize() throws IOException {
        Path data = dir.resolve("d.csv");
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < 7; i++) {
            s.append(i).append(',').append(10 * i).append('\n');
        }
        Files.writeString(data, s.toString());
        List<float[]> direct = new ArrayList<>();
        try (CSVIter it = CSVIter.builder().setDataCsv(data).setDataShape(2).setBatchSize(3).build()) {
            for (int e = 0; e < 3; e++) {
                for (DataBatch b : it) {
                    try (b) {
                        direct.add(b.data().get(0).toFloatArray());
                    }
                }
                it.reset();
            }
        }
        List<float[]> viaPrefetch = new ArrayList<>();
        try (PrefetchingIter it = new PrefetchingIter(new ResizeIter(
                CSVIter.builder().setDataCsv(data).setDataShape(2).setBatchSize(3).build(), direct.size(), false))) {
            for (DataBatch b : it) {
                try (b) {
                    viaPrefetch.add(b.data().get(0).toFloatArray());
                }
            }
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        assertEquals(direct.size(), viaPrefetch.size());
        for (int i = 0; i < direct.size(); i++) {
            assertArrayEquals(direct.get(i), viaPrefetch.get(i), "batch " + i);
        }
    }
}
