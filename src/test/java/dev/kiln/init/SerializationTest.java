package dev.kiln.init;

import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.kiln.init.InitTesting.all;
import static dev.kiln.init.InitTesting.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** dumps() (Python json.dumps formatting), create() and the registry, equality. */
@ExtendWith(NoLeaks.class)
class SerializationTest {

    @Test
    void dumpsMatchesPythonsJsonDumps() {
        // verified on MXNet 1.9.1 (spec 4.2; test_const_init_dumps)
        assertEquals("[\"constant\", {\"value\": 1}]", new Constant(1).dumps());
        assertEquals("[\"xavier\", {\"rnd_type\": \"uniform\", \"factor_type\": \"avg\", \"magnitude\": 3}]", new Xavier().dumps());
        // Python keeps int vs float and prints floats with repr()
        assertEquals("[\"constant\", {\"value\": 1.0}]", new Constant(1.0).dumps());
        assertEquals("[\"constant\", {\"value\": 1e-05}]", new Constant(1e-5).dumps());
        assertEquals("[\"constant\", {\"value\": 1e+16}]", new Constant(1e16).dumps());
        assertEquals("[\"constant\", {\"value\": 0.30000000000000004}]", new Constant(0.1 + 0.2).dumps());
        assertEquals("[\"constant\", {\"value\": Infinity}]", new Constant(Double.POSITIVE_INFINITY).dumps());
        assertEquals("[\"zero\", {}]", new Zero().dumps());
        assertEquals("[\"one\", {}]", new One().dumps());
        assertEquals("[\"uniform\", {\"scale\": 0.07}]", new Uniform().dumps());
        assertEquals("[\"normal\", {\"sigma\": 0.5}]", new Normal(0.5).dumps());
        assertEquals("[\"normal\", {\"sigma\": 0.01}]", new Normal().dumps());
        assertEquals("[\"xavier\", {\"rnd_type\": \"gaussian\", \"factor_type\": \"in\", \"magnitude\": 2.34}]",
                new Xavier("gaussian", "in", 2.34).dumps());
        assertEquals("[\"msraprelu\", {\"factor_type\": \"avg\", \"slope\": 0.25}]", new MSRAPrelu().dumps());
        assertEquals("[\"bilinear\", {}]", new Bilinear().dumps());
        assertEquals("[\"lstmbias\", {\"forget_bias\": 1.0}]", new LSTMBias().dumps());
        assertEquals("[\"constant\", {\"value\": [[1.0, 2.5], [3.0, -4.0]]}]",
                new Constant(new double[] {1, 2.5, 3, -4}, 2, 2).dumps());
    }

    @Test
    void ndArrayConstantsDumpNestedListsOfTheirElementType() {
        try (NDArray f = NDArray.create(new float[] {0.1f, 2}, 2);
                NDArray i = NDArray.zeros(new dev.kiln.ndarray.Shape(1, 2), dev.kiln.ndarray.DType.INT32, dev.kiln.ndarray.Context.cpu())) {
            // float32 0.1 widened to a Python float, as numpy's tolist()
            assertEquals("[\"constant\", {\"value\": [0.10000000149011612, 2.0]}]", new Constant(f).dumps());
            i.fill(3);
            assertEquals("[\"constant\", {\"value\": [[3, 3]]}]", new Constant(i).dumps());
        }
    }

    @Test
    void createAcceptsEveryFormAndRoundTrips() {
        List<Initializer> all = List.of(new Zero(), new One(), new Constant(3), new Constant(0.25), new Uniform(0.1),
                new Normal(2), new Orthogonal(1.0, "normal"), new Xavier("gaussian", "out", 2), new MSRAPrelu("in", 0.1),
                new Bilinear(), new LSTMBias(0.5), new Constant(new double[] {1, 2, 3, 4, 5, 6}, 3, 2));
        for (Initializer init : all) {
            Initializer back = Initializer.create(init.dumps());
            assertEquals(init.getClass(), back.getClass());
            assertEquals(init, back, init.dumps());
            assertEquals(init.hashCode(), back.hashCode());
            assertEquals(init.dumps(), back.dumps());
        }
        Initializer x = new Xavier();
        assertSame(x, Initializer.create(x));
        assertInstanceOf(Zero.class, Initializer.create("zeros"));
        assertInstanceOf(One.class, Initializer.create("ONES"));
        assertInstanceOf(Xavier.class, Initializer.create("Xavier"));
        assertEquals(new Xavier("uniform", "in", 2), Initializer.create("{\"initializer\": \"xavier\", \"factor_type\": \"in\", \"magnitude\": 2}"));
        assertEquals(new Normal(3), Initializer.create(List.of("normal", Map.of("sigma", 3))));
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("initializer", "uniform");
        m.put("scale", 0.5);
        assertEquals(new Uniform(0.5), Initializer.create(m));
        assertEquals(new Uniform(0.5), Initializer.create("uniform", Map.of("scale", 0.5)));
        // MXNet's __init__ hints use a capitalised name
        Initializer prelu = Initializer.create("[\"Constant\", {\"value\": 0.25}]");
        assertEquals(new Constant(0.25), prelu);
        assertEquals("[\"constant\", {\"value\": 0.25}]", prelu.dumps());
        // defaults when kwargs are omitted
        assertEquals(new Uniform(), Initializer.create("uniform"));
        assertEquals(new Orthogonal(), Initializer.create("[\"orthogonal\", {}]"));
    }

    @Test
    void createErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Initializer.create("foo"));
        assertTrue(e.getMessage().startsWith("foo is not registered. Please register with Initializer.register first"), e.getMessage());
        assertTrue(e.getMessage().contains("xavier"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Initializer.create("[\"uniform\", {\"scal\": 1}]"));
        assertTrue(e.getMessage().contains("unexpected keyword argument 'scal'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Initializer.create("constant"));
        assertTrue(e.getMessage().contains("missing required argument 'value'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Initializer.create("[\"uniform\"]"));
        assertThrows(IllegalArgumentException.class, () -> Initializer.create("[\"uniform\", {\"scale\": \"x\"}]"));
        assertThrows(IllegalArgumentException.class, () -> Initializer.create("[\"uniform\", {"));
        assertThrows(IllegalArgumentException.class, () -> Initializer.create((Object) null));
        assertThrows(IllegalArgumentException.class, () -> Initializer.create(Map.of("scale", 1)));
        assertThrows(IllegalArgumentException.class, () -> Initializer.create(42));
    }

    @Test
    void equalityIsClassPlusKwargs() {
        assertEquals(new Xavier(), new Xavier("uniform", "avg", 3.0));   // 3 == 3.0 as in Python
        assertEquals(new Xavier().hashCode(), new Xavier("uniform", "avg", 3.0).hashCode());
        assertNotEquals(new Xavier(), new Xavier("uniform", "in", 3));
        assertNotEquals(new Xavier("gaussian", "avg", 2 / 1.0625), new MSRAPrelu());
        assertNotEquals(new Zero(), new One());
        assertEquals(new Zero(), new Zero());
        assertNotEquals(new Constant(new double[] {1, 2}, 2), new Constant(new double[] {1, 3}, 2));
        Mixed a = new Mixed(List.of(".*"), List.of(new Zero()));
        assertNotEquals(a, new Mixed(List.of(".*"), List.of(new Zero())));
        assertEquals(a, a);
        assertThrows(UnsupportedOperationException.class, a::dumps);
    }

    @Test
    void customInitializersCanBeRegistered() {
        final class Halves extends Initializer {
            Halves() {
                super(Map.of("factor", 2));
            }

            @Override
            protected void initWeight(InitDesc desc, NDArray arr) {
                Fill.constant(arr, 0.5);
            }
        }
        Initializer.register("halves", k -> new Halves());
        assertEquals("[\"halves\", {\"factor\": 2}]", new Halves().dumps());
        assertTrue(all(run(new Zero(), "p", Map.of("__init__", new Halves().dumps()), 3), 0.5));
        assertInstanceOf(Halves.class, Initializer.create("Halves"));
        assertThrows(IllegalArgumentException.class, () -> Initializer.register("", k -> new Zero()));
    }

    @Test
    void pythonJsonEscapesNonAscii() {
        assertEquals("[\"a\\u00e9\\\"\\n\", {\"k\": [1, 2.0, true, null]}]",
                PyJson.dumps(List.of("a\u00e9\"\n", Map.of("k", java.util.Arrays.asList(1L, 2.0, true, null)))));
    }
}
