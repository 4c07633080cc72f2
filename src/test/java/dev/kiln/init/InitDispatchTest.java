package dev.kiln.init;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static dev.kiln.init.InitTesting.all;
import static dev.kiln.init.InitTesting.run;
import static dev.kiln.init.InitTesting.runLegacy;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MXNet's Initializer.__call__ dispatch (spec 4.1, 4.3; test_init.py test_default_init / test_variable_init). */
@ExtendWith(NoLeaks.class)
class InitDispatchTest {

    /** Initialises every argument of {@code sym} in sorted name order, as Module.init_params does; returns name -> values. */
    private static Map<String, double[]> initAll(Symbol sym, Map<String, long[]> inputShapes, Initializer init) {
        Map<String, long[]> shapes = sym.inferShape(inputShapes).argShapeMap();
        Map<String, Map<String, String>> attrs = sym.attrDict();
        Map<String, double[]> out = new TreeMap<>();
        for (String name : new TreeMap<>(shapes).keySet()) {
            if (inputShapes.containsKey(name)) {
                continue;
            }
            try (NDArray a = NDArray.zeros(shapes.get(name))) {
                a.fill(Double.NaN);
                init.init(new InitDesc(name, attrs.get(name), null), a);
                out.put(name, a.toDoubleArray());
            }
        }
        return out;
    }

    @Test
    void preluGammaIsInitialisedByItsInitAttribute() {
        // test_default_init: LeakyReLU(prelu) attaches __init__ = ["Constant", {"value": 0.25}] to its gamma
        Symbol sym = Symbol.leakyReLU("act", Symbol.variable("data"), "prelu");
        assertEquals("[\"Constant\", {\"value\": 0.25}]", sym.attrDict().get("act_gamma").get("__init__"));
        for (Initializer global : List.of(new Uniform(0.01), new Constant(3), new Xavier())) {
            Map<String, double[]> p = initAll(sym, Map.of("data", new long[] {10, 10}), global);
            assertEquals(List.of("act_gamma"), new ArrayList<>(p.keySet()));
            assertTrue(all(p.get("act_gamma"), 0.25), global + ": " + java.util.Arrays.toString(p.get("act_gamma")));
        }
    }

    @Test
    void theInitAttributeSurvivesASymbolJsonRoundTrip() {
        Symbol sym = Symbol.fromJson(Symbol.leakyReLU("act", Symbol.variable("data"), "prelu").toJson());
        Map<String, double[]> p = initAll(sym, Map.of("data", new long[] {4, 3}), new One());
        assertTrue(all(p.get("act_gamma"), 0.25));
    }

    @Test
    void auxStatesUseTheHintsBatchNormAttaches() {
        // test_aux_init, without the BatchNorm operator (issue 4): the hints it attaches to its aux inputs
        Initializer c = new Constant(3);
        assertTrue(all(run(c, "bn_moving_mean", Map.of("__init__", "[\"zero\", {}]"), 4), 0.0));
        assertTrue(all(run(c, "bn_moving_var", Map.of("__init__", "[\"one\", {}]"), 4), 1.0));
    }

    @Test
    void aVariablesOwnInitWinsOverTheGlobalInitializer() {
        // test_variable_init: a variable created with init=One() is 1 although the global initializer is Zero
        Symbol w = Symbol.variable("fc_weight", Map.of("init", new One().dumps()));
        Symbol net = Symbol.fullyConnected("fc", Symbol.variable("data"), w, Symbol.variable("fc_bias"), 4);
        Map<String, double[]> p = initAll(net, Map.of("data", new long[] {2, 3}), new Zero());
        assertTrue(all(p.get("fc_weight"), 1.0));
        assertTrue(all(p.get("fc_bias"), 0.0));
        // without the attribute the global initializer applies
        Symbol plain = Symbol.fullyConnected("fc", Symbol.variable("data"), 4);
        assertTrue(all(initAll(plain, Map.of("data", new long[] {2, 3}), new Zero()).get("fc_weight"), 0.0));
    }

    @Test
    void initAttributeAppliesTheWeightRuleWhateverTheSuffix() {
        // a bias named in __init__ gets the named initializer's weight rule, not the bias rule
        assertTrue(all(run(new Zero(), "fc_bias", Map.of("__init__", "[\"constant\", {\"value\": 7}]"), 3), 7.0));
        // a name no suffix rule knows works when __init__ is given
        assertTrue(all(run(new Zero(), "running_stat", Map.of("__init__", "[\"one\", {}]"), 2, 2), 1.0));
        assertTrue(all(run(new Zero(), "x", Map.of("__init__", "ones"), 2), 1.0));
        // an empty __init__ falls back to the suffix rules, as MXNet's `if init:`
        assertTrue(all(run(new One(), "w_weight", Map.of("__init__", ""), 2), 1.0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> run(new Zero(), "p_weight", Map.of("__init__", "[\"nosuch\", {}]"), 2));
        assertTrue(e.getMessage().contains("p_weight") && e.getMessage().contains("nosuch is not registered"), e.getMessage());
    }

    @Test
    void suffixRulesIgnoreTheGlobalInitializerForBiasGammaBeta() {
        Initializer c = new Constant(3);
        assertTrue(all(run(c, "fc1_weight", 2, 3), 3.0));
        assertTrue(all(run(c, "fc1_bias", 4), 0.0));
        assertTrue(all(run(c, "bn_gamma", 4), 1.0));
        assertTrue(all(run(c, "bn_beta", 4), 0.0));
        assertTrue(all(run(c, "q_min", 1), 0.0));
        assertTrue(all(run(c, "q_max", 1), 1.0));
        assertTrue(all(run(c, "fc_bias_quantize", 3), 0.0));
        // weight_quantize: integers in [-127, 127], not all equal on a large array
        double[] q = run(c, "fc_weight_quantize", 1000);
        double first = q[0];
        boolean varied = false;
        for (double v : q) {
            assertEquals(Math.rint(v), v);
            assertTrue(v >= -127 && v <= 127, "value " + v);
            varied |= v != first;
        }
        assertTrue(varied);
    }

    @Test
    void unknownNamesFailWithMxnetsMessage() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(new Uniform(), "bn_moving_mean", 3));
        assertEquals("Unknown initialization pattern for bn_moving_mean. Default initialization is now limited to "
                + "\"weight\", \"bias\", \"gamma\" (1.0), and \"beta\" (0.0).Please use mx.sym.Variable(init=mx.init.*) "
                + "to set initialization pattern", e.getMessage());
    }

    @Test
    void theArrayIsWrittenInPlaceWhateverItsDtype() {
        try (NDArray d = NDArray.zeros(new Shape(2, 2), DType.FLOAT64, Context.cpu());
                NDArray i = NDArray.zeros(new Shape(3), DType.INT32, Context.cpu());
                NDArray h = NDArray.zeros(new Shape(4, 4), DType.INT8, Context.cpu());
                NDArray g = NDArray.zeros(new Shape(40, 40), DType.FLOAT64, Context.cpu())) {
            new Constant(0.1).init(new InitDesc("a_weight"), d);
            assertArrayEquals(new double[] {0.1, 0.1, 0.1, 0.1}, d.toDoubleArray());
            new One().init(new InitDesc("b_gamma"), i);
            assertArrayEquals(new double[] {1, 1, 1}, i.toDoubleArray());
            new Zero().init(new InitDesc("c_weight_quantize"), h);
            for (double v : h.toDoubleArray()) {
                assertTrue(v >= -127 && v <= 127 && v == Math.rint(v), "int8 value " + v);
            }
            assertFalse(all(h.toDoubleArray(), h.toDoubleArray()[0]));
            new Xavier().init(new InitDesc("d_weight"), g);
            double s = Math.sqrt(3.0 / 40);
            double[] gv = g.toDoubleArray();
            assertTrue(InitTesting.maxAbs(gv) <= s && InitTesting.maxAbs(gv) > 0.9 * s, "float64 max " + InitTesting.maxAbs(gv));
        }
    }

    @Test
    void legacyPlainNameDispatch() {
        Initializer c = new Constant(5);
        assertTrue(all(runLegacy(c, "fc_weight", 2, 2), 5.0));
        assertTrue(all(runLegacy(c, "fc_bias", 2), 0.0));
        assertTrue(all(runLegacy(c, "bn_gamma", 2), 1.0));
        assertTrue(all(runLegacy(c, "bn_beta", 2), 0.0));
        assertTrue(all(runLegacy(c, "bn_moving_mean", 2), 0.0));
        assertTrue(all(runLegacy(c, "bn_moving_var", 2), 1.0));
        assertTrue(all(runLegacy(c, "bn_moving_inv_var", 2), 0.0));
        assertTrue(all(runLegacy(c, "x_moving_avg", 2), 0.0));
        assertTrue(all(runLegacy(c, "q_min", 2), 0.0));
        assertTrue(all(runLegacy(c, "q_max", 2), 1.0));
        // stn_loc rules come before the plain suffix rules
        assertTrue(all(runLegacy(c, "stn_loc_weight", 2, 2), 0.0));
        assertArrayEquals(new double[] {1, 0, 0, 0, 1, 0}, runLegacy(c, "stn_loc_bias", 6));
        assertThrows(IllegalArgumentException.class, () -> runLegacy(c, "stn_loc_bias", 5));
        // upsampling* is bilinear whatever the suffix
        double[] up = runLegacy(c, "upsampling0_weight", 1, 1, 4, 4);
        assertEquals(0.0625, up[0], 1e-7);
        assertEquals(0.5625, up[5], 1e-7);
        // the legacy path ignores attributes and knows no min/max quantize rules
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> runLegacy(c, "foo", 1));
        assertTrue(e.getMessage().startsWith("Unknown initialization pattern for foo."), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> runLegacy(c, null, 1));
    }

    @Test
    void globalInitDefaultsToTheCallingInitializer() {
        List<InitDesc> seen = new ArrayList<>();
        Initializer probe = new Initializer() {
            @Override
            protected void initWeight(InitDesc desc, NDArray arr) {
                seen.add(desc);
                Fill.constant(arr, 2);
            }
        };
        assertTrue(all(run(probe, "w_weight", 2), 2.0));
        assertSame(probe, seen.get(0).globalInit());
        Initializer other = new One();
        try (NDArray a = NDArray.zeros(2)) {
            probe.init(new InitDesc("v_weight", Map.of("k", "v"), other), a);
        }
        assertSame(other, seen.get(1).globalInit());
        assertEquals(Map.of("k", "v"), seen.get(1).attrs());
        assertEquals("v_weight", seen.get(1).toString());
    }

    @Test
    void verboseModeCallsThePrintFunctionWithTheInitialisedArray() {
        List<String> logged = new ArrayList<>();
        Initializer c = new Constant(2).setVerbosity(true, a -> {
            double[] v = a.toDoubleArray();
            logged.add(v.length + ":" + v[0]);
            return "ok";
        });
        run(c, "fc_weight", 2, 3);
        run(c, "fc_bias", 3);
        run(c, "x", Map.of("__init__", "[\"one\", {}]"), 1);
        assertEquals(List.of("6:2.0", "3:0.0", "1:1.0"), logged);
        c.setVerbosity(false);
        run(c, "fc_weight", 2);
        assertEquals(3, logged.size());
        // the default statistic: norm(x)/sqrt(size)
        try (NDArray a = NDArray.create(new float[] {3, 4, 0, 0}, 4)) {
            assertEquals("2.5", Initializer.rmsStat(a));
        }
        new Uniform().setVerbosity(true);
        run(new Uniform().setVerbosity(true), "w_weight", 3);
    }

    @Test
    void initDescValidatesAndCopies() {
        Map<String, String> m = new java.util.HashMap<>(Map.of("a", "1"));
        InitDesc d = new InitDesc("w", m, null);
        m.put("b", "2");
        assertEquals(Map.of("a", "1"), d.attrs());
        assertEquals(new InitDesc("w", Map.of("a", "1"), new One()), d);
        assertTrue(new InitDesc("w").attrs().isEmpty());
        assertThrows(IllegalArgumentException.class, () -> new InitDesc(null));
        assertThrows(UnsupportedOperationException.class, () -> d.attrs().put("c", "3"));
    }
}
