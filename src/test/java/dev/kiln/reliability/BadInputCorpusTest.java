package dev.kiln.reliability;

import dev.kiln.engine.Engine;
import dev.kiln.internal.Json;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Issue 8: bad input never crashes the JVM. Runs every case of
 * {@code src/test/resources/badinput/cases.json} in this one JVM; each case feeds one malformed
 * input (symbol JSON, operator attributes, shapes, NaN data, absurd sizes, corrupt .params /
 * .states / idx / CSV files, closed objects, wrong Module states) to a public entry point and
 * asserts the exact exception class and message fragments. After each case and after the whole
 * corpus the native allocator and handle counts are back to their starting values.
 *
 * <p>Manifest fields: {@code id}, {@code category}, {@code kind} (how to run it, see
 * {@link #run}), kind-specific inputs, {@code expect} (a fully qualified exception class, or
 * {@code "ok"} / {@code "nan"} for documented acceptance / NaN propagation) and {@code message}
 * (fragments that must all occur in the message). With {@code -Dkiln.badinput.record=true} the
 * test prints what each case actually does instead of failing (to write new cases).
 */
class BadInputCorpusTest {
    static final Path DIR = Path.of("src/test/resources/badinput");
    static final boolean RECORD = Boolean.getBoolean("kiln.badinput.record");

    @TestFactory
    List<DynamicTest> corpus() throws Exception {
        Engine.init();
        @SuppressWarnings("unchecked")
        List<Object> cases = (List<Object>) Json.parse(BadInput.read(DIR.resolve("cases.json")));
        BadInput.Native start = BadInput.Native.now();
        Map<String, Integer> byCategory = new TreeMap<>();
        List<DynamicTest> tests = new ArrayList<>();
        for (Object o : cases) {
            @SuppressWarnings("unchecked")
            Map<String, Object> c = (Map<String, Object>) o;
            String id = (String) c.get("id");
            byCategory.merge((String) c.get("category"), 1, Integer::sum);
            tests.add(DynamicTest.dynamicTest(c.get("category") + " / " + id, () -> check(c)));
        }
        assertTrue(cases.size() >= 200, "corpus has " + cases.size() + " cases");
        tests.add(DynamicTest.dynamicTest("native memory back to start", () -> {
            System.out.println("bad-input corpus: " + cases.size() + " cases " + byCategory);
            assertEquals(start, BadInput.Native.now(), "native state after the whole corpus");
        }));
        return tests;
    }

    private static void check(Map<String, Object> c) throws Exception {
        String id = (String) c.get("id");
        String expect = (String) c.get("expect");
        List<String> fragments = BadInput.strings(c.get("message"));
        BadInput.Native before = BadInput.Native.now();
        // a fresh daemon thread per case: a hung case fails alone instead of blocking the next ones
        ExecutorService pool = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "badinput-" + id);
            t.setDaemon(true);
            return t;
        });
        Future<Object> f = pool.submit(() -> run(c));
        pool.shutdown();
        Throwable thrown = null;
        Object result = null;
        try {
            result = f.get(30, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            f.cancel(true);
            fail(id + ": did not finish within 30 s (hang)");
        } catch (java.util.concurrent.ExecutionException e) {
            thrown = e.getCause();
        }
        BadInput.Native after = BadInput.Native.now();
        if (RECORD) {
            System.out.println("RECORD " + Json.write(Map.of("id", id,
                    "type", thrown == null ? (result instanceof Boolean b && b ? "nan" : "ok") : thrown.getClass().getName(),
                    "message", thrown == null ? "" : String.valueOf(thrown.getMessage()),
                    "leak", !before.equals(after))));
            return;
        }
        assertEquals(before, after, id + ": native handles/bytes/blocks before vs after (leak)");
        if (thrown instanceof Error err) {
            throw new AssertionError(id + ": an Error escaped: " + err, err);
        }
        if ("ok".equals(expect) || "nan".equals(expect)) {
            if (thrown != null) {
                throw new AssertionError(id + ": expected " + expect + " but threw " + thrown, thrown);
            }
            if ("nan".equals(expect)) {
                assertEquals(Boolean.TRUE, result, id + ": output should hold NaN (documented propagation)");
            }
            return;
        }
        if (thrown == null) {
            fail(id + ": expected " + expect + " but nothing was thrown");
        }
        if (!thrown.getClass().getName().equals(expect)) {
            throw new AssertionError(id + ": expected " + expect + " but got " + thrown, thrown);
        }
        String msg = String.valueOf(thrown.getMessage());
        for (String frag : fragments) {
            assertTrue(msg.contains(frag), id + ": message lacks '" + frag + "': " + msg);
        }
    }

    /** Runs one case; returns true when the case's output held a NaN. */
    static Object run(Map<String, Object> c) throws Exception {
        String kind = (String) c.get("kind");
        Path file = c.get("file") == null ? null : DIR.resolve((String) c.get("file"));
        switch (kind) {
            case "symbol-json":
                BadInput.symbolJson(c.containsKey("text") ? (String) c.get("text") : BadInput.read(file));
                return false;
            case "symbol-load":
                Symbol.load(file);
                return false;
            case "symbol-bind": {
                Symbol s = Symbol.fromJson(c.containsKey("text") ? (String) c.get("text") : BadInput.read(file));
                BadInput.bindForward(s, BadInput.shapes(c.get("shapes")), Boolean.TRUE.equals(c.get("train")));
                return false;
            }
            case "op": {
                Symbol s = opSymbol(c);
                if (c.containsKey("shapes")) {
                    Map<String, String> types = new LinkedHashMap<>();
                    if (c.get("types") instanceof Map<?, ?> m) {
                        m.forEach((k, v) -> types.put((String) k, (String) v));
                    }
                    BadInput.bindForward(s, BadInput.shapes(c.get("shapes")), types, Boolean.TRUE.equals(c.get("train")));
                }
                return false;
            }
            case "invoke":
                return invoke(c);
            case "params":
                BadInput.params(file);
                return false;
            case "nd-load":
                BadInput.closeAll(NDArray.load(file));
                return false;
            case "checkpoint-params":
                BadInput.checkpointParams(file);
                return false;
            case "states":
                BadInput.states(Files.readAllBytes(file));
                return false;
            case "idx":
                BadInput.idx(file);
                return false;
            case "mnist-iter":
                BadInput.mnistIter(DIR.resolve((String) c.get("image")), DIR.resolve((String) c.get("label")),
                        ((Number) c.getOrDefault("batch", 2.0)).intValue());
                return false;
            case "csv":
                BadInput.csv(file);
                return false;
            case "csv-iter":
                BadInput.csvIter(file, BadInput.longs(c.get("dataShape")),
                        c.get("label") == null ? null : DIR.resolve((String) c.get("label")),
                        c.get("labelShape") == null ? new long[] {1} : BadInput.longs(c.get("labelShape")),
                        ((Number) c.getOrDefault("batch", 2.0)).intValue());
                return false;
            case "scenario":
                Scenarios.run((String) c.get("name"));
                return false;
            default:
                throw new IllegalStateException("unknown case kind " + kind);
        }
    }

    private static Map<String, String> attrs(Map<String, Object> c) {
        Map<String, String> a = new LinkedHashMap<>();
        if (c.get("attrs") instanceof Map<?, ?> m) {
            m.forEach((k, v) -> a.put((String) k, String.valueOf(v)));
        }
        return a;
    }

    private static Symbol opSymbol(Map<String, Object> c) {
        List<Symbol> in = new ArrayList<>();
        for (String n : BadInput.strings(c.get("inputs"))) {
            in.add(Symbol.variable(n));
        }
        return Symbol.create((String) c.get("op"), "op", attrs(c), null, in.toArray(new Symbol[0]));
    }

    /** NDArray.invoke on arrays given as {shape, values} (values may be "nan", "inf", "-inf"); true when an output holds NaN. */
    private static Object invoke(Map<String, Object> c) {
        List<NDArray> in = new ArrayList<>();
        List<NDArray> out = List.of();
        try {
            @SuppressWarnings("unchecked")
            List<Object> arrays = (List<Object>) c.get("arrays");
            for (Object o : arrays) {
                @SuppressWarnings("unchecked")
                Map<String, Object> a = (Map<String, Object>) o;
                long[] shape = BadInput.longs(a.get("shape"));
                @SuppressWarnings("unchecked")
                List<Object> vals = (List<Object>) a.get("values");
                float[] v = new float[vals.size()];
                for (int i = 0; i < v.length; i++) {
                    Object x = vals.get(i);
                    v[i] = x instanceof Number n ? n.floatValue()
                            : "nan".equals(x) ? Float.NaN : "inf".equals(x) ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY;
                }
                in.add(NDArray.create(v, shape));
            }
            out = NDArray.invoke((String) c.get("op"), attrs(c), in.toArray(new NDArray[0]));
            boolean nan = false;
            for (NDArray o : out) {
                for (float x : o.toFloatArray()) {
                    nan |= Float.isNaN(x);
                }
            }
            return nan;
        } finally {
            in.forEach(NDArray::close);
            out.forEach(NDArray::close);
        }
    }
}
