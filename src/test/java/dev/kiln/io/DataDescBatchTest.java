package dev.kiln.io;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(NoLeaks.class)
class DataDescBatchTest {
    @Test
    void dataDescEqualityIgnoresDtypeAndLayout() {
        DataDesc a = new DataDesc("data", new long[] {2, 3});
        DataDesc b = new DataDesc("data", new long[] {2, 3}, DType.FLOAT16, "TNC");
        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
        assertNotEquals(a, new DataDesc("data", new long[] {2, 4}));
        assertNotEquals(a, new DataDesc("label", new long[] {2, 3}));
        assertEquals(List.of(a), List.of(b));
    }

    @Test
    void dataDescDefaultsReprAndBatchAxis() {
        DataDesc d = new DataDesc("data", new long[] {2, 3});
        assertEquals(DType.FLOAT32, d.dtype());
        assertEquals("NCHW", d.layout());
        assertEquals("DataDesc[data,(2, 3),float32,NCHW]", d.toString());
        assertEquals("DataDesc[softmax_label,(5,),float32,NCHW]", new DataDesc("softmax_label", new long[] {5}).toString());
        assertEquals("DataDesc[x,(4, 5, 6),float16,TNC]", new DataDesc("x", new long[] {4, 5, 6}, DType.FLOAT16, "TNC").toString());
        assertEquals(0, DataDesc.batchAxis(null));
        assertEquals(0, DataDesc.batchAxis("NCHW"));
        assertEquals(1, DataDesc.batchAxis("TNC"));
        assertEquals(-1, DataDesc.batchAxis("CHW"));
        assertEquals(0, d.batchAxis());
        assertEquals(0, new DataDesc("s", new long[] {7}, DType.FLOAT32, null).batchAxis());
        long[] s = d.shape();
        s[0] = 99;
        assertArrayEquals(new long[] {2, 3}, d.shape(), "shape() is a copy");
        assertThrows(IllegalArgumentException.class, () -> new DataDesc("d", new long[] {-1}));
    }

    @Test
    void dataDescList() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("b", new long[] {1});
        shapes.put("a", new long[] {2, 2});
        List<DataDesc> l = DataDesc.list(shapes, Map.of("a", DType.INT32));
        assertEquals("DataDesc[b,(1,),float32,NCHW]", l.get(0).toString());
        assertEquals("DataDesc[a,(2, 2),int32,NCHW]", l.get(1).toString());
    }

    @Test
    void dataBatchToStringAsMxnet() {
        try (DataBatch b = new DataBatch(List.of(NDArray.zeros(2, 3)), null)) {
            assertEquals("DataBatch: data shapes: [(2, 3)] label shapes: None", b.toString());
            assertTrue(b.label().isEmpty());
            assertEquals(0, b.pad());
            assertNull(b.index());
            assertNull(b.provideData());
        }
        try (DataBatch b = new DataBatch(List.of(NDArray.zeros(2, 3), NDArray.zeros(2, 1, 4, 4)), List.of(NDArray.zeros(2)))) {
            assertEquals("DataBatch: data shapes: [(2, 3), (2, 1, 4, 4)] label shapes: [(2,)]", b.toString());
        }
    }

    @Test
    void dataBatchOwnsAndClosesItsArraysIdempotently() {
        NDArray d = NDArray.zeros(2, 3);
        NDArray l = NDArray.zeros(2);
        DataBatch b = new DataBatch(List.of(d), List.of(l), 1, new long[] {4, 5}, "key",
                List.of(new DataDesc("data", new long[] {2, 3})), List.of(new DataDesc("softmax_label", new long[] {2})));
        assertEquals(1, b.pad());
        assertEquals("key", b.bucketKey());
        long[] idx = b.index();
        idx[0] = 100;
        assertArrayEquals(new long[] {4, 5}, b.index());
        assertThrows(UnsupportedOperationException.class, () -> b.data().add(d));
        assertFalse(b.isClosed());
        b.close();
        assertTrue(b.isClosed() && d.isClosed() && l.isClosed());
        b.close();
        assertEquals("DataBatch: data shapes: [(2, 3)] label shapes: [(2,)]", b.toString(), "toString works after close");
    }

    @Test
    void dataBatchRejectsBadArguments() {
        assertThrows(NullPointerException.class, () -> new DataBatch(null, null));
        try (NDArray a = NDArray.zeros(1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new DataBatch(List.of(a), null, -1, null, null, null, null));
            assertTrue(e.getMessage().contains("pad"), e.getMessage());
        }
    }
}
