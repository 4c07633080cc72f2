package dev.kiln.init;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static dev.kiln.init.InitTesting.all;
import static dev.kiln.init.InitTesting.maxAbs;
import static dev.kiln.init.InitTesting.run;
import static dev.kiln.init.InitTesting.runLegacy;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Mixed (regex at the start of the name, first match wins) and Load (.params file or map). */
@ExtendWith(NoLeaks.class)
class MixedLoadTest {
    @TempDir
    Path dir;

    @Test
    void mixedPicksTheFirstPatternMatchingAtTheStart() {
        Mixed m = new Mixed(List.of("fc1", "bias", ".*"), List.of(new Constant(1), new Constant(2), new Constant(3)));
        assertTrue(all(run(m, "fc1_weight", 2), 1.0));
        assertTrue(all(run(m, "fc2_weight", 2), 3.0));
        // "bias" does not match at the start of "fc2_bias"; ".*" does, and the suffix rule then gives 0
        assertTrue(all(run(m, "fc2_bias", 2), 0.0));
        // "bias..." matches the second pattern; the chosen Constant(2) still applies suffix rules: weight -> 2
        assertTrue(all(run(m, "bias_weight", 2), 2.0));
        // fc1_bias matches "fc1" first: Constant(1), bias rule -> 0
        assertTrue(all(run(m, "fc1_bias", 2), 0.0));
        // the chosen initializer honours __init__ attributes
        assertTrue(all(run(m, "fc2_weight", Map.of("__init__", "[\"constant\", {\"value\": 9}]"), 2), 9.0));
        // order matters: ".*" first shadows everything
        Mixed greedy = new Mixed(List.of(".*", "fc1"), List.of(new Constant(3), new Constant(1)));
        assertTrue(all(run(greedy, "fc1_weight", 2), 3.0));
        assertTrue(all(runLegacy(m, "fc1_weight", 2), 1.0));
    }

    @Test
    void mixedWithoutAMatchFails() {
        Mixed m = new Mixed(List.of("conv"), List.of(new Zero()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(m, "fc_weight", 2));
        assertTrue(e.getMessage().startsWith("Parameter name fc_weight did not match any pattern."), e.getMessage());
        assertTrue(e.getMessage().contains("\".*\""), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Mixed(List.of("a", "b"), List.of(new Zero())));
        assertThrows(IllegalArgumentException.class, () -> new Mixed(List.of("(unclosed"), List.of(new Zero())));
    }

    @Test
    void loadFromAParamsFileStripsArgAndAuxPrefixes() throws Exception {
        Path file = dir.resolve("net-0001.params");
        Map<String, NDArray> save = new LinkedHashMap<>();
        try (NDArray w = NDArray.create(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
                NDArray b = NDArray.create(new float[] {7, 8}, 2);
                NDArray mm = NDArray.create(new double[] {0.5, 0.25}, 2)) {
            save.put("arg:fc_weight", w);
            save.put("arg:fc_bias", b);
            save.put("aux:bn_moving_mean", mm);
            NDArray.save(file, save);
        }
        Load load = new Load(file, new Constant(-1), false);
        assertEquals(Set.of("fc_weight", "fc_bias", "bn_moving_mean"), load.names());
        assertArrayEquals(new double[] {1, 2, 3, 4, 5, 6}, run(load, "fc_weight", 2, 3));
        assertArrayEquals(new double[] {7, 8}, run(load, "fc_bias", 2));
        // float64 saved into a float32 parameter: converted; the name is an aux state, no suffix rule needed
        assertArrayEquals(new double[] {0.5, 0.25}, run(load, "bn_moving_mean", 2));
        // not in the file: the default initializer with its full dispatch
        assertTrue(all(run(load, "fc2_weight", 3), -1.0));
        assertTrue(all(run(load, "fc2_bias", 3), 0.0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(load, "fc_weight", 3, 2));
        assertEquals("Parameter fc_weight cannot be initialized from loading. Shape mismatch, target (3, 2) vs loaded (2, 3)",
                e.getMessage());
        // into a float64 array
        try (NDArray d = NDArray.zeros(new Shape(2, 3), DType.FLOAT64, Context.cpu())) {
            load.init(new InitDesc("fc_weight"), d);
            assertArrayEquals(new double[] {1, 2, 3, 4, 5, 6}, d.toDoubleArray());
        }
        assertTrue(all(runLegacy(load, "fc3_weight", 2), -1.0));
        assertThrows(UnsupportedOperationException.class, load::dumps);
    }

    @Test
    void loadWithoutDefaultFailsOnMissingNames() throws Exception {
        Path file = dir.resolve("a.params");
        try (NDArray w = NDArray.create(new float[] {1}, 1)) {
            NDArray.save(file, Map.of("w_weight", w));
        }
        Load load = new Load(file);
        assertArrayEquals(new double[] {1}, run(load, "w_weight", 1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(load, "v_weight", 1));
        assertEquals("Cannot Initialize v_weight. Not found in loaded param and no default Initializer is provided.", e.getMessage());
        // an unnamed list cannot be loaded by name
        Path list = dir.resolve("list.params");
        try (NDArray w = NDArray.create(new float[] {1}, 1)) {
            NDArray.save(list, List.of(w));
        }
        assertThrows(IllegalArgumentException.class, () -> new Load(list));
        assertThrows(java.io.IOException.class, () -> new Load(dir.resolve("missing.params")));
    }

    @Test
    void loadFromAMapCopiesTheValues() {
        Load load;
        try (NDArray w = NDArray.create(new float[] {3, 4}, 2)) {
            load = new Load(Map.of("arg:x_weight", w), new Uniform(0.01), true);
        }
        // the source array is closed: the values were copied
        assertArrayEquals(new double[] {3, 4}, run(load, "x_weight", 2));
        double[] other = run(load, "y_weight", 50);
        assertTrue(maxAbs(other) <= 0.01 && maxAbs(other) > 0);
    }
}
