package dev.kiln.ndarray;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.testutil.NoLeaks;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** {@link NDArray#sumInto}: the cross-device sum behind KVStore.push and the data-parallel average. */
@ExtendWith(NoLeaks.class)
class SumIntoTest {
    @Test
    void sumsAcrossContextsAndDtypesInOrder() {
        try (NDScope s = NDScope.open()) {
            NDArray a = NDArray.create(new float[] {1, 2, 3}, 3);
            NDArray b = NDArray.create(new float[] {10, 20, 30}, 3).copyTo(Context.cpu(1));
            NDArray c = NDArray.create(new double[] {100, 200, 300}, 3);
            NDArray out = NDArray.zeros(new Shape(3), DType.FLOAT32, Context.cpu(0));
            NDArray.sumInto(List.of(a, b, c), out);
            assertArrayEquals(new float[] {111, 222, 333}, out.toFloatArray());
            NDArray.sumInto(List.of(b), out);
            assertArrayEquals(new float[] {10, 20, 30}, out.toFloatArray());
        }
    }

    @Test
    void rejectsEmptyListsAndShapeMismatches() {
        try (NDScope s = NDScope.open()) {
            NDArray out = NDArray.zeros(3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NDArray.sumInto(List.of(), out));
            assertTrue(e.getMessage().contains("no arrays"), e.getMessage());
            NDArray a = NDArray.zeros(3);
            NDArray b = NDArray.zeros(4);
            e = assertThrows(IllegalArgumentException.class, () -> NDArray.sumInto(List.of(a, b), out));
            assertTrue(e.getMessage().contains("part 1 has shape"), e.getMessage());
        }
    }
}
