package dev.kiln.internal;

import java.lang.reflect.Array;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, strict JSON (RFC 8259) parser and writer with no dependencies. Internal: used for
 * symbol files, the native registry's answers and inference results.
 *
 * <p>Parsing maps JSON values to Java as follows: object to {@code LinkedHashMap<String,
 * Object>} (key order kept, duplicate keys rejected), array to {@code ArrayList<Object>}, string
 * to {@link String}, number without fraction or exponent to {@link Long} (or {@link Double} when
 * it does not fit), other numbers to {@link Double}, {@code true}/{@code false} to {@link
 * Boolean}, {@code null} to {@code null}. Anything that is not JSON (trailing commas, comments,
 * single quotes, leading zeros, NaN, unescaped control characters, trailing text) fails with
 * {@code IllegalArgumentException("malformed JSON at offset N: ...")}. Nesting deeper than a
 * limit ({@value #DEFAULT_MAX_DEPTH} by default) is rejected instead of overflowing the stack.
 *
 * <p>Thread-safety: all methods are static and stateless; safe from any thread.
 */
public final class Json {
    /** Default maximum nesting depth of arrays and objects accepted by {@link #parse(String)}. */
    public static final int DEFAULT_MAX_DEPTH = 512;

    private Json() {}

    // ---------------------------------------------------------------------------------------
    // Parsing
    // ---------------------------------------------------------------------------------------

    /**
     * Parses one JSON value (surrounding whitespace allowed, nothing else).
     *
     * @param text the JSON text
     * @return the value as described in the class comment (may be {@code null} for {@code null})
     * @throws IllegalArgumentException if the text is not valid JSON, with the character offset
     */
    public static Object parse(String text) {
        return parse(text, DEFAULT_MAX_DEPTH);
    }

    /**
     * Parses one JSON value with an explicit nesting limit.
     *
     * @param text the JSON text
     * @param maxDepth maximum nesting depth of arrays/objects (at least 1)
     * @return the parsed value
     * @throws IllegalArgumentException if the text is not valid JSON or nests deeper than {@code maxDepth}
     */
    public static Object parse(String text, int maxDepth) {
        if (text == null) {
            throw new IllegalArgumentException("malformed JSON at offset 0: input is null");
        }
        Parser p = new Parser(text, Math.max(1, maxDepth));
        // a UTF-8 byte order mark read as text is tolerated
        if (p.pos < text.length() && text.charAt(p.pos) == '\uFEFF') {
            p.pos++;
        }
        p.skipWs();
        Object v = p.value(0);
        p.skipWs();
        if (p.pos != text.length()) {
            throw p.error("unexpected text after the JSON value");
        }
        return v;
    }

    private static final class Parser {
        final String s;
        final int maxDepth;
        int pos;

        Parser(String s, int maxDepth) {
            this.s = s;
            this.maxDepth = maxDepth;
        }

        IllegalArgumentException error(String msg) {
            return new IllegalArgumentException("malformed JSON at offset " + pos + ": " + msg);
        }

        void skipWs() {
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                    pos++;
                } else {
                    break;
                }
            }
        }

        String describeHere() {
            if (pos >= s.length()) {
                return "end of input";
            }
            char c = s.charAt(pos);
            if (c < 0x20 || c > 0x7e) {
                return String.format("character U+%04X", (int) c);
            }
            return "'" + c + "'";
        }

        Object value(int depth) {
            if (pos >= s.length()) {
                throw error("unexpected end of input, expected a value");
            }
            char c = s.charAt(pos);
            switch (c) {
                case '{':
                    return object(depth + 1);
                case '[':
                    return array(depth + 1);
                case '"':
                    return string();
                case 't':
                    literal("true");
                    return Boolean.TRUE;
                case 'f':
                    literal("false");
                    return Boolean.FALSE;
                case 'n':
                    literal("null");
                    return null;
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw error("unexpected " + describeHere() + ", expected a value");
            }
        }

        void literal(String word) {
            if (!s.startsWith(word, pos)) {
                throw error("unexpected " + describeHere() + ", expected a value");
            }
            pos += word.length();
        }

        Map<String, Object> object(int depth) {
            if (depth > maxDepth) {
                throw error("nesting deeper than " + maxDepth + " levels");
            }
            pos++; // '{'
            Map<String, Object> m = new LinkedHashMap<>();
            skipWs();
            if (pos < s.length() && s.charAt(pos) == '}') {
                pos++;
                return m;
            }
            while (true) {
                skipWs();
                if (pos >= s.length() || s.charAt(pos) != '"') {
                    throw error("unexpected " + describeHere() + ", expected a string key");
                }
                int keyPos = pos;
                String key = string();
                skipWs();
                if (pos >= s.length() || s.charAt(pos) != ':') {
                    throw error("unexpected " + describeHere() + ", expected ':' after object key");
                }
                pos++;
                skipWs();
                Object v = value(depth);
                if (m.containsKey(key)) {
                    pos = keyPos;
                    throw error("duplicate key \"" + key + "\"");
                }
                m.put(key, v);
                skipWs();
                if (pos >= s.length()) {
                    throw error("unexpected end of input, expected ',' or '}'");
                }
                char c = s.charAt(pos);
                if (c == ',') {
                    pos++;
                } else if (c == '}') {
                    pos++;
                    return m;
                } else {
                    throw error("unexpected " + describeHere() + ", expected ',' or '}'");
                }
            }
        }

        List<Object> array(int depth) {
            if (depth > maxDepth) {
                throw error("nesting deeper than " + maxDepth + " levels");
            }
            pos++; // '['
            List<Object> l = new ArrayList<>();
            skipWs();
            if (pos < s.length() && s.charAt(pos) == ']') {
                pos++;
                return l;
            }
            while (true) {
                skipWs();
                l.add(value(depth));
                skipWs();
                if (pos >= s.length()) {
                    throw error("unexpected end of input, expected ',' or ']'");
                }
                char c = s.charAt(pos);
                if (c == ',') {
                    pos++;
                } else if (c == ']') {
                    pos++;
                    return l;
                } else {
                    throw error("unexpected " + describeHere() + ", expected ',' or ']'");
                }
            }
        }

        String string() {
            pos++; // opening quote
            StringBuilder sb = null;
            int start = pos;
            while (true) {
                if (pos >= s.length()) {
                    throw error("unterminated string");
                }
                char c = s.charAt(pos);
                if (c == '"') {
                    String out = sb == null ? s.substring(start, pos) : sb.append(s, start, pos).toString();
                    pos++;
                    return out;
                }
                if (c < 0x20) {
                    throw error(String.format("unescaped control character U+%04X in string", (int) c));
                }
                if (c == '\\') {
                    if (sb == null) {
                        sb = new StringBuilder();
                    }
                    sb.append(s, start, pos);
                    pos++;
                    if (pos >= s.length()) {
                        throw error("unterminated string");
                    }
                    char e = s.charAt(pos);
                    switch (e) {
                        case '"': sb.append('"'); break;
                        case '\\': sb.append('\\'); break;
                        case '/': sb.append('/'); break;
                        case 'b': sb.append('\b'); break;
                        case 'f': sb.append('\f'); break;
                        case 'n': sb.append('\n'); break;
                        case 'r': sb.append('\r'); break;
                        case 't': sb.append('\t'); break;
                        case 'u': {
                            if (pos + 4 >= s.length()) {
                                throw error("truncated \\u escape");
                            }
                            int code = 0;
                            for (int i = 1; i <= 4; i++) {
                                int d = Character.digit(s.charAt(pos + i), 16);
                                if (d < 0) {
                                    pos += i;
                                    throw error("invalid hex digit in \\u escape");
                                }
                                code = code * 16 + d;
                            }
                            sb.append((char) code);
                            pos += 4;
                            break;
                        }
                        default:
                            throw error("invalid escape '\\" + e + "'");
                    }
                    pos++;
                    start = pos;
                    continue;
                }
                pos++;
            }
        }

        Object number() {
            int start = pos;
            boolean integral = true;
            if (s.charAt(pos) == '-') {
                pos++;
            }
            if (pos >= s.length()) {
                throw error("truncated number");
            }
            char c = s.charAt(pos);
            if (c == '0') {
                pos++;
                if (pos < s.length() && isDigit(s.charAt(pos))) {
                    throw error("leading zeros are not allowed in numbers");
                }
            } else if (c >= '1' && c <= '9') {
                while (pos < s.length() && isDigit(s.charAt(pos))) {
                    pos++;
                }
            } else {
                throw error("unexpected " + describeHere() + " in number");
            }
            if (pos < s.length() && s.charAt(pos) == '.') {
                integral = false;
                pos++;
                if (pos >= s.length() || !isDigit(s.charAt(pos))) {
                    throw error("expected a digit after the decimal point");
                }
                while (pos < s.length() && isDigit(s.charAt(pos))) {
                    pos++;
                }
            }
            if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
                integral = false;
                pos++;
                if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) {
                    pos++;
                }
                if (pos >= s.length() || !isDigit(s.charAt(pos))) {
                    throw error("expected a digit in the exponent");
                }
                while (pos < s.length() && isDigit(s.charAt(pos))) {
                    pos++;
                }
            }
            String t = s.substring(start, pos);
            if (integral) {
                try {
                    return Long.parseLong(t);
                } catch (NumberFormatException overflow) {
                    return Double.parseDouble(t);
                }
            }
            return Double.parseDouble(t);
        }

        static boolean isDigit(char c) {
            return c >= '0' && c <= '9';
        }
    }

    // ---------------------------------------------------------------------------------------
    // Typed access helpers (for code that reads parsed JSON)
    // ---------------------------------------------------------------------------------------

    /**
     * Casts a parsed value to a JSON object.
     *
     * @param v the parsed value
     * @param what a description of the value for the error message (e.g. {@code "node 3"})
     * @return the object as an unmodifiable-by-convention map
     * @throws IllegalArgumentException if {@code v} is not an object
     */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> asObject(Object v, String what) {
        if (v instanceof Map) {
            return (Map<String, Object>) v;
        }
        throw new IllegalArgumentException(what + ": expected a JSON object, got " + typeName(v));
    }

    /**
     * Casts a parsed value to a JSON array.
     *
     * @param v the parsed value
     * @param what a description for the error message
     * @return the list
     * @throws IllegalArgumentException if {@code v} is not an array
     */
    @SuppressWarnings("unchecked")
    public static List<Object> asArray(Object v, String what) {
        if (v instanceof List) {
            return (List<Object>) v;
        }
        throw new IllegalArgumentException(what + ": expected a JSON array, got " + typeName(v));
    }

    /**
     * Casts a parsed value to a string.
     *
     * @param v the parsed value
     * @param what a description for the error message
     * @return the string
     * @throws IllegalArgumentException if {@code v} is not a string
     */
    public static String asString(Object v, String what) {
        if (v instanceof String) {
            return (String) v;
        }
        throw new IllegalArgumentException(what + ": expected a JSON string, got " + typeName(v));
    }

    /**
     * Reads a parsed value as an integer number (no fraction, within {@code long}).
     *
     * @param v the parsed value
     * @param what a description for the error message
     * @return the value
     * @throws IllegalArgumentException if {@code v} is not an integral JSON number
     */
    public static long asLong(Object v, String what) {
        if (v instanceof Long) {
            return (Long) v;
        }
        throw new IllegalArgumentException(what + ": expected an integer, got " + typeName(v)
                + (v instanceof Double ? " " + v : ""));
    }

    /**
     * Reads a parsed value as a boolean.
     *
     * @param v the parsed value
     * @param what a description for the error message
     * @return the value
     * @throws IllegalArgumentException if {@code v} is not {@code true} or {@code false}
     */
    public static boolean asBoolean(Object v, String what) {
        if (v instanceof Boolean) {
            return (Boolean) v;
        }
        throw new IllegalArgumentException(what + ": expected true or false, got " + typeName(v));
    }

    /**
     * Names the JSON type of a parsed value ({@code "object"}, {@code "array"}, {@code "string"},
     * {@code "number"}, {@code "boolean"}, {@code "null"}).
     *
     * @param v a parsed value
     * @return the JSON type name
     */
    public static String typeName(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof Map) {
            return "object";
        }
        if (v instanceof List) {
            return "array";
        }
        if (v instanceof String) {
            return "string";
        }
        if (v instanceof Number) {
            return "number";
        }
        if (v instanceof Boolean) {
            return "boolean";
        }
        return v.getClass().getSimpleName();
    }

    // ---------------------------------------------------------------------------------------
    // Writing
    // ---------------------------------------------------------------------------------------

    /**
     * Writes a value as compact JSON (no whitespace).
     *
     * <p>Accepted values: {@code null}, {@link Boolean}, {@link Number} (finite), {@link
     * CharSequence}, {@link Character}, enums (as their {@code toString()}), {@link Map} (keys
     * converted with {@code String.valueOf}), {@link Iterable}, and Java arrays (primitive or not).
     *
     * @param value the value
     * @return the JSON text
     * @throws IllegalArgumentException for NaN/infinite numbers, unsupported types or nesting
     *     deeper than {@value #DEFAULT_MAX_DEPTH} (e.g. a map containing itself)
     */
    public static String write(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, -1, 0);
        return sb.toString();
    }

    /**
     * Writes a value as indented JSON: one element per line, two spaces per level, {@code ": "}
     * after keys, empty containers as {@code []}/{@code {}}.
     *
     * @param value the value (see {@link #write(Object)})
     * @return the JSON text, without a trailing newline
     * @throws IllegalArgumentException as {@link #write(Object)}
     */
    public static String writeIndented(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, 0, 0);
        return sb.toString();
    }

    /**
     * Quotes a string as a JSON string literal: escapes {@code "} and {@code \}, writes {@code
     * \b \f \n \r \t} for those characters and {@code \}{@code u00XX} for other control characters.
     *
     * @param s the string
     * @return the quoted literal including the surrounding double quotes
     */
    public static String quote(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2);
        quote(sb, s);
        return sb.toString();
    }

    /**
     * Appends {@link #quote(String)} of {@code s} to {@code sb}.
     *
     * @param sb the destination
     * @param s the string
     */
    public static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\b': sb.append("\\b"); break;
                case '\f': sb.append("\\f"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
            }
        }
        sb.append('"');
    }

    /** indent < 0: compact; else the current nesting level of a pretty printer. */
    private static void write(StringBuilder sb, Object v, int indent, int depth) {
        if (depth > DEFAULT_MAX_DEPTH) {
            throw new IllegalArgumentException("cannot write JSON: nesting deeper than " + DEFAULT_MAX_DEPTH
                    + " levels (a container that contains itself?)");
        }
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean) {
            sb.append(((Boolean) v) ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                throw new IllegalArgumentException("cannot write JSON: number " + d + " is not finite");
            }
            if (v instanceof Float) {
                sb.append(Float.toString((Float) v));
            } else {
                sb.append(Double.toString(d));
            }
        } else if (v instanceof Number) {
            sb.append(v.toString());
        } else if (v instanceof CharSequence || v instanceof Character || v instanceof Enum) {
            quote(sb, v.toString());
        } else if (v instanceof Map) {
            Map<?, ?> m = (Map<?, ?>) v;
            if (m.isEmpty()) {
                sb.append("{}");
                return;
            }
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                newline(sb, indent, indent + 1);
                quote(sb, String.valueOf(e.getKey()));
                sb.append(indent < 0 ? ":" : ": ");
                write(sb, e.getValue(), indent < 0 ? -1 : indent + 1, depth + 1);
            }
            newline(sb, indent, indent);
            sb.append('}');
        } else if (v instanceof Iterable || v.getClass().isArray()) {
            List<Object> items = new ArrayList<>();
            if (v instanceof Iterable) {
                for (Object o : (Iterable<?>) v) {
                    items.add(o);
                }
            } else {
                int n = Array.getLength(v);
                for (int i = 0; i < n; i++) {
                    items.add(Array.get(v, i));
                }
            }
            if (items.isEmpty()) {
                sb.append("[]");
                return;
            }
            sb.append('[');
            boolean first = true;
            for (Object o : items) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                newline(sb, indent, indent + 1);
                write(sb, o, indent < 0 ? -1 : indent + 1, depth + 1);
            }
            newline(sb, indent, indent);
            sb.append(']');
        } else {
            throw new IllegalArgumentException("cannot write JSON: unsupported type " + v.getClass().getName());
        }
    }

    private static void newline(StringBuilder sb, int mode, int level) {
        if (mode < 0) {
            return;
        }
        sb.append('\n');
        sb.append(String.join("", Collections.nCopies(level * 2, " ")));
    }
}
