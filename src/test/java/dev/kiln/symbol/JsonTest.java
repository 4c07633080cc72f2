package dev.kiln.symbol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.internal.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@link Json}: strict parsing with offsets in error messages, depth limit, writer round trips. */
class JsonTest {

    @Test
    void parsesAllValueKinds() {
        Object v = Json.parse(" {\"a\": [1, -2, 3.5, 1e3, true, false, null], \"b\": {\"c\": \"x\\n\\u00e9\\\"\"}} ");
        Map<String, Object> m = Json.asObject(v, "root");
        List<Object> a = Json.asArray(m.get("a"), "a");
        assertEquals(1L, a.get(0));
        assertEquals(-2L, a.get(1));
        assertEquals(3.5, a.get(2));
        assertEquals(1000.0, a.get(3));
        assertEquals(Boolean.TRUE, a.get(4));
        assertEquals(Boolean.FALSE, a.get(5));
        assertNull(a.get(6));
        assertEquals("x\n\u00e9\"", Json.asObject(m.get("b"), "b").get("c"));
        assertEquals(List.of("a", "b"), List.copyOf(m.keySet()), "key order is kept");
    }

    @Test
    void largeIntegersBecomeDoubles() {
        assertEquals(Long.MAX_VALUE, Json.parse("9223372036854775807"));
        assertEquals(9.223372036854775808e18, Json.parse("9223372036854775808"));
    }

    @Test
    void surrogatePairsAndSolidus() {
        assertEquals("\uD83D\uDE00/", Json.parse("\"\\ud83d\\ude00\\/\""));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", " ", "{", "}", "[", "[1,]", "[1 2]", "{\"a\" 1}", "{\"a\":}", "{a:1}", "{'a':1}",
        "{\"a\":1,}", "01", "-", "1.", ".5", "1e", "+1", "tru", "nul", "NaN", "Infinity", "\"abc", "\"\\x\"",
        "\"\\u12g4\"", "\"\\u12\"", "\"a\u0001b\"", "[1] x", "// c\n1", "1 2", "{\"a\":1}}", "[\"a\",]"})
    void rejectsMalformedInputWithOffset(String text) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse(text));
        assertTrue(e.getMessage().startsWith("malformed JSON at offset "), e.getMessage());
    }

    @Test
    void offsetPointsAtTheProblem() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse("[1, 2, x]"));
        assertTrue(e.getMessage().startsWith("malformed JSON at offset 7:"), e.getMessage());
    }

    @Test
    void rejectsDuplicateKeys() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Json.parse("{\"a\": 1, \"a\": 2}"));
        assertTrue(e.getMessage().contains("duplicate key \"a\""), e.getMessage());
    }

    @Test
    void rejectsNullInput() {
        assertThrows(IllegalArgumentException.class, () -> Json.parse(null));
    }

    @Test
    void deepNestingIsRejectedNotAStackOverflow() {
        char[] open = new char[1_000_000];
        Arrays.fill(open, '[');
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse(new String(open)));
        assertTrue(e.getMessage().contains("nesting deeper than 512"), e.getMessage());
        String ok = "[".repeat(512) + "]".repeat(512);
        Json.parse(ok);
        assertThrows(IllegalArgumentException.class, () -> Json.parse("[[[1]]]", 2));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\":{\"b\":{}}}", 2));
    }

    @Test
    void typedAccessorsExplainMismatches() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Json.asObject(Json.parse("[1]"), "node 3"));
        assertEquals("node 3: expected a JSON object, got array", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Json.asLong(1.5, "x"));
        assertThrows(IllegalArgumentException.class, () -> Json.asString(null, "x"));
        assertThrows(IllegalArgumentException.class, () -> Json.asBoolean("true", "x"));
    }

    @Test
    void writesCompactAndIndented() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("a", List.of(1, 2L, 2.5));
        m.put("b", Map.of());
        m.put("c", new long[] {3, 4});
        m.put("d", null);
        m.put("e", "q\"\\\n\t\u0001");
        m.put("f", true);
        assertEquals("{\"a\":[1,2,2.5],\"b\":{},\"c\":[3,4],\"d\":null,\"e\":\"q\\\"\\\\\\n\\t\\u0001\",\"f\":true}",
                Json.write(m));
        assertEquals("{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": []\n}",
                Json.writeIndented(Map.of("a", List.of(1, 2), "b", List.of()).entrySet().stream()
                        .sorted(Map.Entry.comparingByKey())
                        .collect(LinkedHashMap::new, (mm, en) -> mm.put(en.getKey(), en.getValue()), Map::putAll)));
    }

    @Test
    void writeThenParseRoundTrips() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("s", "\u00e9\u4e2d\uD83D\uDE00 \b\f\r");
        m.put("n", List.of(-1L, 0L, 123456789012345L, 0.125, -2.5e-10));
        m.put("o", Map.of("k", List.of()));
        assertEquals(m, Json.parse(Json.write(m)));
        assertEquals(m, Json.parse(Json.writeIndented(m)));
    }

    @Test
    void writerRejectsNonFiniteAndCycles() {
        assertThrows(IllegalArgumentException.class, () -> Json.write(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> Json.write(List.of(Double.POSITIVE_INFINITY)));
        Map<String, Object> self = new HashMap<>();
        self.put("me", self);
        assertThrows(IllegalArgumentException.class, () -> Json.write(self));
        assertThrows(IllegalArgumentException.class, () -> Json.write(new Object()));
    }
}
