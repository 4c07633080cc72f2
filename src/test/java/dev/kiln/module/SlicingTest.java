package dev.kiln.module;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** predict's merge of its batches' outputs: more parts than one Concat takes are merged in groups. */
@ExtendWith(NoLeaks.class)
class SlicingTest {
    @Test
    void moreBatchesThanOneConcatTakesAreMergedInOrder() {
        int n = Slicing.MAX_CONCAT + 3;
        try (NDScope scope = NDScope.open()) {
            List<NDArray> parts = new ArrayList<>();
            float[] want = new float[2 * n];
            for (int i = 0; i < n; i++) {
                parts.add(NDArray.create(new float[] {i, -i}, 1, 2));
                want[2 * i] = i;
                want[2 * i + 1] = -i;
            }
            try (NDArray all = Slicing.concat(parts, 0, Context.cpu())) {
                assertArrayEquals(new long[] {n, 2}, all.shape().dims());
                assertArrayEquals(want, all.toFloatArray());
            }
            assertEquals(n, parts.size());
        }
    }
}
