package dev.kiln.optimizer;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A small, safe codec for the Python pickle values that MXNet's {@code .states} files hold
 * (module-api spec §7.4). Internal to the optimizer package.
 *
 * <p>Value model (both directions): {@code None} = {@code null}, {@code bool} = {@link Boolean},
 * {@code int} = {@link Long} ({@link BigInteger} beyond 64 bits; the writer also takes {@link
 * Integer}), {@code float} = {@link Double}, {@code str} = {@link String}, {@code bytes} =
 * {@code byte[]}, {@code bytearray} = {@link ByteArray}, {@code tuple} = {@link Tuple}, {@code
 * list} = {@link List}, {@code dict} = {@link Map} (insertion order kept), {@code set}/{@code
 * frozenset} (read only) = {@link java.util.Set}, a class reference = {@link Global}, an object
 * built by REDUCE or NEWOBJ (+ BUILD) = {@link PObject}.
 *
 * <p>Reading never executes or instantiates anything: classes are only named ({@link Global}),
 * except {@code builtins.bytearray}, which becomes a {@link ByteArray}. Every length is checked
 * against the bytes present; malformed input raises {@link IllegalArgumentException} naming the
 * offset. The reader handles protocols 0 to 5 (without persistent ids, the extension registry
 * and out-of-band buffers). The writer emits protocol 3, which Python 3 and MXNet read.
 *
 * <p>Thread-safety: stateless; safe from any thread.
 */
final class Pickle {
    private Pickle() {}

    /** A class reference ({@code GLOBAL module name}). */
    record Global(String module, String name) {
        Global {
            Objects.requireNonNull(module, "module");
            Objects.requireNonNull(name, "name");
        }

        @Override
        public String toString() {
            return module + "." + name;
        }
    }

    /** A Python tuple: an immutable list. */
    static final class Tuple {
        private final List<Object> items;

        Tuple(List<?> items) {
            this.items = Collections.unmodifiableList(new ArrayList<>(items));
        }

        static Tuple of(Object... items) {
            return new Tuple(Arrays.asList(items));
        }

        List<Object> items() {
            return items;
        }

        int size() {
            return items.size();
        }

        Object get(int i) {
            return items.get(i);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Tuple t && deepEquals(items, t.items);
        }

        @Override
        public int hashCode() {
            return items.size();
        }

        @Override
        public String toString() {
            return "Tuple" + items;
        }
    }

    /** A Python bytearray (MXNet's NDArray handle). */
    record ByteArray(byte[] bytes) {
        ByteArray {
            Objects.requireNonNull(bytes, "bytes");
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof ByteArray b && Arrays.equals(bytes, b.bytes);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(bytes);
        }

        @Override
        public String toString() {
            return "bytearray(" + bytes.length + " bytes)";
        }
    }

    /**
     * An object: {@code cls(*args)} (REDUCE) or {@code cls.__new__(cls, *args)} (NEWOBJ), then
     * {@code __setstate__(state)} or a {@code __dict__} update (BUILD); state is null without BUILD.
     */
    static final class PObject {
        final Global cls;
        final Tuple args;
        final boolean newObj;
        Object state;

        PObject(Global cls, Tuple args, boolean newObj, Object state) {
            this.cls = Objects.requireNonNull(cls, "cls");
            this.args = Objects.requireNonNull(args, "args");
            this.newObj = newObj;
            this.state = state;
        }

        @Override
        public String toString() {
            return "PObject{" + cls + (newObj ? " new" : "") + " args=" + args + " state=" + state + "}";
        }
    }

    static boolean deepEquals(Object a, Object b) {
        if (a instanceof byte[] x && b instanceof byte[] y) {
            return Arrays.equals(x, y);
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) {
                return false;
            }
            for (int i = 0; i < x.size(); i++) {
                if (!deepEquals(x.get(i), y.get(i))) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
            if (x.size() != y.size()) {
                return false;
            }
            for (Map.Entry<?, ?> e : x.entrySet()) {
                if (!y.containsKey(e.getKey()) || !deepEquals(e.getValue(), y.get(e.getKey()))) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof PObject x && b instanceof PObject y) {
            return x.cls.equals(y.cls) && x.newObj == y.newObj && deepEquals(x.args, y.args)
                    && deepEquals(x.state, y.state);
        }
        return Objects.equals(a, b);
    }

    // =========================================================================================
    // Opcodes
    // =========================================================================================

    static final int MARK = '(';
    static final int STOP = '.';
    static final int POP = '0';
    static final int POP_MARK = '1';
    static final int DUP = '2';
    static final int FLOAT = 'F';
    static final int INT = 'I';
    static final int BININT = 'J';
    static final int BININT1 = 'K';
    static final int LONG = 'L';
    static final int BININT2 = 'M';
    static final int NONE = 'N';
    static final int REDUCE = 'R';
    static final int STRING = 'S';
    static final int BINSTRING = 'T';
    static final int SHORT_BINSTRING = 'U';
    static final int UNICODE = 'V';
    static final int BINUNICODE = 'X';
    static final int APPEND = 'a';
    static final int BUILD = 'b';
    static final int GLOBAL = 'c';
    static final int DICT = 'd';
    static final int EMPTY_DICT = '}';
    static final int APPENDS = 'e';
    static final int GET = 'g';
    static final int BINGET = 'h';
    static final int LONG_BINGET = 'j';
    static final int LIST = 'l';
    static final int EMPTY_LIST = ']';
    static final int PUT = 'p';
    static final int BINPUT = 'q';
    static final int LONG_BINPUT = 'r';
    static final int SETITEM = 's';
    static final int TUPLE = 't';
    static final int EMPTY_TUPLE = ')';
    static final int SETITEMS = 'u';
    static final int BINFLOAT = 'G';
    static final int PROTO = 0x80;
    static final int NEWOBJ = 0x81;
    static final int TUPLE1 = 0x85;
    static final int TUPLE2 = 0x86;
    static final int TUPLE3 = 0x87;
    static final int NEWTRUE = 0x88;
    static final int NEWFALSE = 0x89;
    static final int LONG1 = 0x8a;
    static final int LONG4 = 0x8b;
    static final int BINBYTES = 'B';
    static final int SHORT_BINBYTES = 'C';
    static final int SHORT_BINUNICODE = 0x8c;
    static final int BINUNICODE8 = 0x8d;
    static final int BINBYTES8 = 0x8e;
    static final int EMPTY_SET = 0x8f;
    static final int ADDITEMS = 0x90;
    static final int FROZENSET = 0x91;
    static final int NEWOBJ_EX = 0x92;
    static final int STACK_GLOBAL = 0x93;
    static final int MEMOIZE = 0x94;
    static final int FRAME = 0x95;
    static final int BYTEARRAY8 = 0x96;

    private static final Object MARK_OBJ = new Object() {
        @Override
        public String toString() {
            return "<mark>";
        }
    };

    // =========================================================================================
    // Reading
    // =========================================================================================

    /**
     * Decodes one pickled value.
     *
     * @param data the pickle bytes
     * @return the value (see the class comment)
     * @throws IllegalArgumentException if the data is not a valid pickle of supported opcodes
     */
    static Object load(byte[] data) {
        return new Reader(data).run();
    }

    private static final class Reader {
        private final byte[] d;
        private int pos;
        private final List<Object> stack = new ArrayList<>();
        private final List<Integer> marks = new ArrayList<>();
        private final Map<Long, Object> memo = new HashMap<>();

        Reader(byte[] data) {
            this.d = Objects.requireNonNull(data, "pickle data");
        }

        private IllegalArgumentException bad(int at, String msg) {
            return new IllegalArgumentException("invalid pickle at offset " + at + ": " + msg);
        }

        private void need(long n, String what) {
            if (n < 0 || n > d.length - pos) {
                throw bad(pos, what + " needs " + n + " bytes, only " + (d.length - pos) + " left");
            }
        }

        private int u8() {
            need(1, "opcode argument");
            return d[pos++] & 0xff;
        }

        private ByteBuffer le(int n, String what) {
            need(n, what);
            ByteBuffer b = ByteBuffer.wrap(d, pos, n).order(ByteOrder.LITTLE_ENDIAN);
            pos += n;
            return b;
        }

        private byte[] bytes(long n, String what) {
            need(n, what);
            byte[] out = Arrays.copyOfRange(d, pos, pos + (int) n);
            pos += (int) n;
            return out;
        }

        private String utf8(long n, String what) {
            int at = pos;
            byte[] b = bytes(n, what);
            try {
                CharBuffer cb = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(b));
                return cb.toString();
            } catch (CharacterCodingException e) {
                throw bad(at, what + " is not valid UTF-8");
            }
        }

        /** A protocol-0 text line up to (excluding) '\n'. */
        private String line(String what) {
            int start = pos;
            while (pos < d.length && d[pos] != '\n') {
                pos++;
            }
            if (pos >= d.length) {
                throw bad(start, what + ": missing end of line");
            }
            String s = new String(d, start, pos - start, StandardCharsets.ISO_8859_1);
            pos++;
            return s;
        }

        private long len64(String what) {
            long n = le(8, what).getLong();
            if (n < 0) {
                throw bad(pos - 8, what + ": length " + Long.toUnsignedString(n) + " is too large");
            }
            return n;
        }

        private void push(Object o) {
            stack.add(o);
        }

        private Object pop(String op) {
            if (stack.isEmpty()) {
                throw bad(pos - 1, op + " on an empty stack");
            }
            Object o = stack.remove(stack.size() - 1);
            if (o == MARK_OBJ) {
                throw bad(pos - 1, op + " found a mark where a value was expected");
            }
            return o;
        }

        private Object top(String op) {
            if (stack.isEmpty() || stack.get(stack.size() - 1) == MARK_OBJ) {
                throw bad(pos - 1, op + " needs a value on the stack");
            }
            return stack.get(stack.size() - 1);
        }

        /** Pops everything above the last mark, and the mark. */
        private List<Object> popMark(String op) {
            if (marks.isEmpty()) {
                throw bad(pos - 1, op + " without a MARK");
            }
            int m = marks.remove(marks.size() - 1);
            List<Object> items = new ArrayList<>(stack.subList(m + 1, stack.size()));
            while (stack.size() > m) {
                stack.remove(stack.size() - 1);
            }
            if (items.contains(MARK_OBJ)) {
                throw bad(pos - 1, op + ": nested mark");
            }
            return items;
        }

        @SuppressWarnings("unchecked")
        private Map<Object, Object> dictOnTop(String op) {
            Object o = top(op);
            if (!(o instanceof Map)) {
                throw bad(pos - 1, op + " on a " + typeName(o) + ", not a dict");
            }
            return (Map<Object, Object>) o;
        }

        @SuppressWarnings("unchecked")
        private List<Object> listOnTop(String op) {
            Object o = top(op);
            if (!(o instanceof List)) {
                throw bad(pos - 1, op + " on a " + typeName(o) + ", not a list");
            }
            return (List<Object>) o;
        }

        private Object key(Object k, String op) {
            if (k instanceof Map || k instanceof List || k instanceof ByteArray) {
                throw bad(pos - 1, op + ": unhashable key of type " + typeName(k));
            }
            return k;
        }

        private void memoPut(long idx) {
            memo.put(idx, top("PUT"));
        }

        private Object memoGet(long idx) {
            if (!memo.containsKey(idx)) {
                throw bad(pos - 1, "memo key " + idx + " is not defined");
            }
            return memo.get(idx);
        }

        private static long parseLongText(String s, Reader r, String what) {
            String t = s.endsWith("L") ? s.substring(0, s.length() - 1) : s;
            try {
                return Long.parseLong(t.trim());
            } catch (NumberFormatException e) {
                throw r.bad(r.pos, what + ": not an integer: '" + s + "'");
            }
        }

        private static Object intValue(BigInteger v) {
            return v.bitLength() < 64 ? (Object) v.longValue() : v;
        }

        private Object reduce(Object callable, Object args, boolean newObj) {
            if (!(callable instanceof Global g)) {
                throw bad(pos - 1, (newObj ? "NEWOBJ" : "REDUCE") + " on a " + typeName(callable) + ", not a class");
            }
            if (!(args instanceof Tuple t)) {
                throw bad(pos - 1, (newObj ? "NEWOBJ" : "REDUCE") + " arguments are a " + typeName(args) + ", not a tuple");
            }
            if (!newObj && g.module().equals("builtins") && g.name().equals("bytearray")
                    || !newObj && g.module().equals("__builtin__") && g.name().equals("bytearray")) {
                if (t.size() == 0) {
                    return new ByteArray(new byte[0]);
                }
                Object b = t.get(0);
                if (b instanceof byte[] bytes) {
                    return new ByteArray(bytes);
                }
                if (b instanceof String s && t.size() == 2 && "latin-1".equals(t.get(1))) {
                    return new ByteArray(s.getBytes(StandardCharsets.ISO_8859_1));
                }
                throw bad(pos - 1, "bytearray from a " + typeName(b));
            }
            if (!newObj && g.module().equals("_codecs") && g.name().equals("encode") && t.size() == 2
                    && t.get(0) instanceof String s && t.get(1) instanceof String enc
                    && (enc.equals("latin1") || enc.equals("latin-1"))) {
                // protocol 2 writes bytes as _codecs.encode(u'...', 'latin1')
                return s.getBytes(StandardCharsets.ISO_8859_1);
            }
            return new PObject(g, t, newObj, null);
        }

        Object run() {
            while (true) {
                if (pos >= d.length) {
                    throw bad(pos, "truncated pickle: no STOP opcode");
                }
                int at = pos;
                int op = d[pos++] & 0xff;
                switch (op) {
                    case PROTO -> {
                        int p = u8();
                        if (p > 5) {
                            throw bad(at, "unsupported pickle protocol " + p);
                        }
                    }
                    case FRAME -> le(8, "FRAME length"); // frames only group opcodes; nothing to do
                    case STOP -> {
                        Object v = pop("STOP");
                        if (!stack.isEmpty()) {
                            throw bad(at, "STOP with " + stack.size() + " values left on the stack");
                        }
                        return v;
                    }
                    case MARK -> {
                        marks.add(stack.size());
                        stack.add(MARK_OBJ);
                    }
                    case POP -> {
                        if (!stack.isEmpty() && stack.get(stack.size() - 1) == MARK_OBJ) {
                            stack.remove(stack.size() - 1);
                            marks.remove(marks.size() - 1);
                        } else {
                            pop("POP");
                        }
                    }
                    case POP_MARK -> popMark("POP_MARK");
                    case DUP -> push(top("DUP"));
                    case NONE -> push(null);
                    case NEWTRUE -> push(Boolean.TRUE);
                    case NEWFALSE -> push(Boolean.FALSE);
                    case BININT -> push((long) le(4, "BININT").getInt());
                    case BININT1 -> push((long) u8());
                    case BININT2 -> push((long) (le(2, "BININT2").getShort() & 0xffff));
                    case LONG1 -> push(longBytes(u8()));
                    case LONG4 -> {
                        int n = le(4, "LONG4 length").getInt();
                        if (n < 0) {
                            throw bad(at, "LONG4 with negative length " + n);
                        }
                        push(longBytes(n));
                    }
                    case INT -> {
                        String s = line("INT");
                        if (s.equals("01")) {
                            push(Boolean.TRUE);
                        } else if (s.equals("00")) {
                            push(Boolean.FALSE);
                        } else {
                            push(parseLongText(s, this, "INT"));
                        }
                    }
                    case LONG -> {
                        String s = line("LONG");
                        String t = s.endsWith("L") ? s.substring(0, s.length() - 1) : s;
                        try {
                            push(intValue(new BigInteger(t.trim())));
                        } catch (NumberFormatException e) {
                            throw bad(at, "LONG: not an integer: '" + s + "'");
                        }
                    }
                    case BINFLOAT -> {
                        need(8, "BINFLOAT");
                        double v = ByteBuffer.wrap(d, pos, 8).order(ByteOrder.BIG_ENDIAN).getDouble();
                        pos += 8;
                        push(v);
                    }
                    case FLOAT -> {
                        String s = line("FLOAT");
                        try {
                            push(Double.parseDouble(s.trim()));
                        } catch (NumberFormatException e) {
                            throw bad(at, "FLOAT: not a number: '" + s + "'");
                        }
                    }
                    case BINUNICODE -> push(utf8(Integer.toUnsignedLong(le(4, "BINUNICODE length").getInt()), "BINUNICODE"));
                    case SHORT_BINUNICODE -> push(utf8(u8(), "SHORT_BINUNICODE"));
                    case BINUNICODE8 -> push(utf8(len64("BINUNICODE8 length"), "BINUNICODE8"));
                    case UNICODE -> push(unescapeRawUnicode(line("UNICODE")));
                    case BINSTRING -> {
                        int n = le(4, "BINSTRING length").getInt();
                        if (n < 0) {
                            throw bad(at, "BINSTRING with negative length " + n);
                        }
                        push(new String(bytes(n, "BINSTRING"), StandardCharsets.ISO_8859_1));
                    }
                    case SHORT_BINSTRING -> push(new String(bytes(u8(), "SHORT_BINSTRING"), StandardCharsets.ISO_8859_1));
                    case STRING -> push(unquoteString(line("STRING"), at));
                    case BINBYTES -> push(bytes(Integer.toUnsignedLong(le(4, "BINBYTES length").getInt()), "BINBYTES"));
                    case SHORT_BINBYTES -> push(bytes(u8(), "SHORT_BINBYTES"));
                    case BINBYTES8 -> push(bytes(len64("BINBYTES8 length"), "BINBYTES8"));
                    case BYTEARRAY8 -> push(new ByteArray(bytes(len64("BYTEARRAY8 length"), "BYTEARRAY8")));
                    case EMPTY_DICT -> push(new LinkedHashMap<>());
                    case EMPTY_LIST -> push(new ArrayList<>());
                    case EMPTY_TUPLE -> push(new Tuple(List.of()));
                    case EMPTY_SET -> push(new LinkedHashSet<>());
                    case TUPLE -> push(new Tuple(popMark("TUPLE")));
                    case TUPLE1 -> push(Tuple.of(pop("TUPLE1")));
                    case TUPLE2 -> {
                        Object b = pop("TUPLE2");
                        Object a = pop("TUPLE2");
                        push(Tuple.of(a, b));
                    }
                    case TUPLE3 -> {
                        Object c = pop("TUPLE3");
                        Object b = pop("TUPLE3");
                        Object a = pop("TUPLE3");
                        push(Tuple.of(a, b, c));
                    }
                    case LIST -> push(new ArrayList<>(popMark("LIST")));
                    case DICT -> {
                        List<Object> items = popMark("DICT");
                        if (items.size() % 2 != 0) {
                            throw bad(at, "DICT with an odd number of items");
                        }
                        Map<Object, Object> m = new LinkedHashMap<>();
                        for (int i = 0; i < items.size(); i += 2) {
                            m.put(key(items.get(i), "DICT"), items.get(i + 1));
                        }
                        push(m);
                    }
                    case FROZENSET -> push(Collections.unmodifiableSet(new LinkedHashSet<>(popMark("FROZENSET"))));
                    case APPEND -> {
                        Object v = pop("APPEND");
                        listOnTop("APPEND").add(v);
                    }
                    case APPENDS -> {
                        List<Object> items = popMark("APPENDS");
                        listOnTop("APPENDS").addAll(items);
                    }
                    case ADDITEMS -> {
                        List<Object> items = popMark("ADDITEMS");
                        Object s = top("ADDITEMS");
                        if (!(s instanceof java.util.Set)) {
                            throw bad(at, "ADDITEMS on a " + typeName(s) + ", not a set");
                        }
                        @SuppressWarnings("unchecked")
                        java.util.Set<Object> set = (java.util.Set<Object>) s;
                        set.addAll(items);
                    }
                    case SETITEM -> {
                        Object v = pop("SETITEM");
                        Object k = pop("SETITEM");
                        dictOnTop("SETITEM").put(key(k, "SETITEM"), v);
                    }
                    case SETITEMS -> {
                        List<Object> items = popMark("SETITEMS");
                        if (items.size() % 2 != 0) {
                            throw bad(at, "SETITEMS with an odd number of items");
                        }
                        Map<Object, Object> m = dictOnTop("SETITEMS");
                        for (int i = 0; i < items.size(); i += 2) {
                            m.put(key(items.get(i), "SETITEMS"), items.get(i + 1));
                        }
                    }
                    case GLOBAL -> {
                        String module = line("GLOBAL module");
                        String name = line("GLOBAL name");
                        push(new Global(module, name));
                    }
                    case STACK_GLOBAL -> {
                        Object name = pop("STACK_GLOBAL");
                        Object module = pop("STACK_GLOBAL");
                        if (!(module instanceof String m) || !(name instanceof String n)) {
                            throw bad(at, "STACK_GLOBAL needs two strings, got " + typeName(module) + " and "
                                    + typeName(name));
                        }
                        push(new Global(m, n));
                    }
                    case REDUCE -> {
                        Object args = pop("REDUCE");
                        Object callable = pop("REDUCE");
                        push(reduce(callable, args, false));
                    }
                    case NEWOBJ -> {
                        Object args = pop("NEWOBJ");
                        Object cls = pop("NEWOBJ");
                        push(reduce(cls, args, true));
                    }
                    case NEWOBJ_EX -> {
                        Object kwargs = pop("NEWOBJ_EX");
                        Object args = pop("NEWOBJ_EX");
                        Object cls = pop("NEWOBJ_EX");
                        if (!(kwargs instanceof Map<?, ?> kw) || !kw.isEmpty()) {
                            throw bad(at, "NEWOBJ_EX with keyword arguments is not supported");
                        }
                        push(reduce(cls, args, true));
                    }
                    case BUILD -> {
                        Object state = pop("BUILD");
                        Object obj = top("BUILD");
                        if (!(obj instanceof PObject po)) {
                            throw bad(at, "BUILD on a " + typeName(obj) + ", not an object");
                        }
                        if (po.state instanceof Map<?, ?> old && state instanceof Map<?, ?> add) {
                            @SuppressWarnings("unchecked")
                            Map<Object, Object> m = (Map<Object, Object>) old;
                            m.putAll(add);
                        } else {
                            po.state = state;
                        }
                    }
                    case PUT -> memoPut(parseLongText(line("PUT"), this, "PUT"));
                    case BINPUT -> memoPut(u8());
                    case LONG_BINPUT -> memoPut(Integer.toUnsignedLong(le(4, "LONG_BINPUT").getInt()));
                    case MEMOIZE -> memoPut(memo.size());
                    case GET -> push(memoGet(parseLongText(line("GET"), this, "GET")));
                    case BINGET -> push(memoGet(u8()));
                    case LONG_BINGET -> push(memoGet(Integer.toUnsignedLong(le(4, "LONG_BINGET").getInt())));
                    default -> throw bad(at, String.format("unsupported pickle opcode 0x%02x", op));
                }
            }
        }

        private Object longBytes(int n) {
            if (n == 0) {
                return 0L;
            }
            byte[] le = bytes(n, "LONG bytes");
            byte[] be = new byte[n];
            for (int i = 0; i < n; i++) {
                be[i] = le[n - 1 - i];
            }
            return intValue(new BigInteger(be));
        }

        private String unquoteString(String s, int at) {
            String t = s.trim();
            if (t.length() < 2 || t.charAt(0) != t.charAt(t.length() - 1) || (t.charAt(0) != '\'' && t.charAt(0) != '"')) {
                throw bad(at, "STRING argument is not quoted: " + s);
            }
            return unescapePython(t.substring(1, t.length() - 1), at);
        }

        private String unescapePython(String s, int at) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if (c != '\\' || i + 1 >= s.length()) {
                    b.append(c);
                    continue;
                }
                char e = s.charAt(++i);
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 't' -> b.append('\t');
                    case 'r' -> b.append('\r');
                    case '\\' -> b.append('\\');
                    case '\'' -> b.append('\'');
                    case '"' -> b.append('"');
                    case 'x' -> {
                        if (i + 2 >= s.length()) {
                            throw bad(at, "bad \\x escape in STRING");
                        }
                        try {
                            b.append((char) Integer.parseInt(s.substring(i + 1, i + 3), 16));
                        } catch (NumberFormatException ex) {
                            throw bad(at, "bad \\x escape in STRING");
                        }
                        i += 2;
                    }
                    default -> b.append('\\').append(e);
                }
            }
            return b.toString();
        }

        private String unescapeRawUnicode(String s) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                try {
                    if (c == '\\' && i + 6 <= s.length() && s.charAt(i + 1) == 'u') {
                        b.append((char) Integer.parseInt(s.substring(i + 2, i + 6), 16));
                        i += 5;
                        continue;
                    }
                    if (c == '\\' && i + 10 <= s.length() && s.charAt(i + 1) == 'U') {
                        b.appendCodePoint(Integer.parseInt(s.substring(i + 2, i + 10), 16));
                        i += 9;
                        continue;
                    }
                } catch (IllegalArgumentException e) {
                    throw bad(pos, "bad escape in UNICODE argument");
                }
                b.append(c);  // raw-unicode-escape: other characters are code points 0..255
            }
            return b.toString();
        }
    }

    static String typeName(Object o) {
        if (o == null) {
            return "None";
        }
        if (o instanceof Boolean) {
            return "bool";
        }
        if (o instanceof Long || o instanceof Integer || o instanceof BigInteger) {
            return "int";
        }
        if (o instanceof Double) {
            return "float";
        }
        if (o instanceof String) {
            return "str";
        }
        if (o instanceof byte[]) {
            return "bytes";
        }
        if (o instanceof ByteArray) {
            return "bytearray";
        }
        if (o instanceof Tuple) {
            return "tuple";
        }
        if (o instanceof List) {
            return "list";
        }
        if (o instanceof Map) {
            return "dict";
        }
        if (o instanceof java.util.Set) {
            return "set";
        }
        if (o instanceof Global g) {
            return "class " + g;
        }
        if (o instanceof PObject p) {
            return p.cls + " object";
        }
        return o.getClass().getSimpleName();
    }

    // =========================================================================================
    // Writing
    // =========================================================================================

    /**
     * Encodes a value as a protocol-3 pickle (the opcodes Python 3's pickler uses for protocol 3;
     * memo entries only for dicts, lists and objects referenced more than once, so that a shared
     * container is one object again when read, and an unshared value gives the minimal sequence
     * of spec §7.4).
     *
     * @param value the value (see the class comment; {@link Integer} is written as an int)
     * @return the pickle bytes
     * @throws IllegalArgumentException for a value of an unsupported type or a recursive value
     */
    static byte[] dump(Object value) {
        Writer w = new Writer();
        w.countRefs(value);
        w.out.write(PROTO);
        w.out.write(3);
        w.write(value);
        w.out.write(STOP);
        return w.out.toByteArray();
    }

    private static final class Writer {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        final Map<Object, Integer> memo = new IdentityHashMap<>();
        final Map<Object, Boolean> active = new IdentityHashMap<>();
        /** How often each dict, list and object is referenced; only shared ones are memoized. */
        final Map<Object, Integer> refs = new IdentityHashMap<>();

        void countRefs(Object v) {
            if (v instanceof Map || v instanceof List || v instanceof PObject) {
                int n = refs.merge(v, 1, Integer::sum);
                if (n > 1) {
                    return;
                }
            }
            if (v instanceof Tuple t) {
                if (active.put(t, Boolean.TRUE) != null) {
                    throw new IllegalArgumentException("cannot pickle a recursive value");
                }
                t.items().forEach(this::countRefs);
                active.remove(t);
            } else if (v instanceof List<?> l) {
                if (active.put(l, Boolean.TRUE) != null) {
                    throw new IllegalArgumentException("cannot pickle a recursive value");
                }
                l.forEach(this::countRefs);
                active.remove(l);
            } else if (v instanceof Map<?, ?> m) {
                if (active.put(m, Boolean.TRUE) != null) {
                    throw new IllegalArgumentException("cannot pickle a recursive value");
                }
                m.forEach((k, x) -> {
                    countRefs(k);
                    countRefs(x);
                });
                active.remove(m);
            } else if (v instanceof PObject p) {
                if (active.put(p, Boolean.TRUE) != null) {
                    throw new IllegalArgumentException("cannot pickle a recursive value");
                }
                countRefs(p.args);
                countRefs(p.state);
                active.remove(p);
            }
        }

        void u32(long v) {
            out.write((int) v & 0xff);
            out.write((int) (v >>> 8) & 0xff);
            out.write((int) (v >>> 16) & 0xff);
            out.write((int) (v >>> 24) & 0xff);
        }

        void memoize(Object o) {
            if (refs.getOrDefault(o, 0) < 2) {
                return;
            }
            int idx = memo.size();
            memo.put(o, idx);
            if (idx < 256) {
                out.write(BINPUT);
                out.write(idx);
            } else {
                out.write(LONG_BINPUT);
                u32(idx);
            }
        }

        boolean fromMemo(Object o) {
            Integer idx = memo.get(o);
            if (idx == null) {
                return false;
            }
            if (idx < 256) {
                out.write(BINGET);
                out.write(idx);
            } else {
                out.write(LONG_BINGET);
                u32(idx);
            }
            return true;
        }

        void str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            out.write(BINUNICODE);
            u32(b.length);
            out.writeBytes(b);
        }

        void bytes(byte[] b) {
            if (b.length < 256) {
                out.write(SHORT_BINBYTES);
                out.write(b.length);
            } else {
                out.write(BINBYTES);
                u32(b.length);
            }
            out.writeBytes(b);
        }

        void integer(BigInteger v) {
            if (v.signum() >= 0 && v.bitLength() <= 8) {
                out.write(BININT1);
                out.write(v.intValue());
            } else if (v.signum() >= 0 && v.bitLength() <= 16) {
                out.write(BININT2);
                out.write(v.intValue() & 0xff);
                out.write((v.intValue() >>> 8) & 0xff);
            } else if (v.bitLength() <= 31) {
                out.write(BININT);
                u32(v.intValue());
            } else {
                byte[] be = v.toByteArray();
                if (be.length > 255) {
                    throw new IllegalArgumentException("integer too large to pickle: " + v);
                }
                out.write(LONG1);
                out.write(be.length);
                for (int i = be.length - 1; i >= 0; i--) {
                    out.write(be[i]);
                }
            }
        }

        void global(Global g) {
            out.write(GLOBAL);
            out.writeBytes((g.module() + "\n" + g.name() + "\n").getBytes(StandardCharsets.UTF_8));
        }

        void write(Object v) {
            if (v == null) {
                out.write(NONE);
            } else if (v instanceof Boolean b) {
                out.write(b ? NEWTRUE : NEWFALSE);
            } else if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) {
                integer(BigInteger.valueOf(((Number) v).longValue()));
            } else if (v instanceof BigInteger bi) {
                integer(bi);
            } else if (v instanceof Double || v instanceof Float) {
                out.write(BINFLOAT);
                out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putDouble(((Number) v).doubleValue()).array());
            } else if (v instanceof String s) {
                str(s);
            } else if (v instanceof byte[] b) {
                bytes(b);
            } else if (v instanceof ByteArray ba) {
                global(new Global("builtins", "bytearray"));
                bytes(ba.bytes());
                out.write(TUPLE1);
                out.write(REDUCE);
            } else if (v instanceof Global g) {
                global(g);
            } else if (v instanceof Tuple t) {
                enter(t);
                int n = t.size();
                if (n == 0) {
                    out.write(EMPTY_TUPLE);
                } else if (n <= 3) {
                    for (Object o : t.items()) {
                        write(o);
                    }
                    out.write(n == 1 ? TUPLE1 : n == 2 ? TUPLE2 : TUPLE3);
                } else {
                    out.write(MARK);
                    for (Object o : t.items()) {
                        write(o);
                    }
                    out.write(TUPLE);
                }
                leave(t);
            } else if (v instanceof List<?> l) {
                if (fromMemo(l)) {
                    return;
                }
                enter(l);
                out.write(EMPTY_LIST);
                memoize(l);
                for (int i = 0; i < l.size(); i += 1000) {
                    List<?> batch = l.subList(i, Math.min(l.size(), i + 1000));
                    if (batch.size() == 1) {
                        write(batch.get(0));
                        out.write(APPEND);
                    } else {
                        out.write(MARK);
                        for (Object o : batch) {
                            write(o);
                        }
                        out.write(APPENDS);
                    }
                }
                leave(l);
            } else if (v instanceof Map<?, ?> m) {
                if (fromMemo(m)) {
                    return;
                }
                enter(m);
                out.write(EMPTY_DICT);
                memoize(m);
                writeItems(m);
                leave(m);
            } else if (v instanceof PObject p) {
                if (fromMemo(p)) {
                    return;
                }
                enter(p);
                global(p.cls);
                write(p.args);
                out.write(p.newObj ? NEWOBJ : REDUCE);
                memoize(p);
                if (p.state != null) {
                    write(p.state);
                    out.write(BUILD);
                }
                leave(p);
            } else {
                throw new IllegalArgumentException("cannot pickle a " + v.getClass().getName());
            }
        }

        void writeItems(Map<?, ?> m) {
            List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
            for (int i = 0; i < entries.size(); i += 1000) {
                List<Map.Entry<?, ?>> batch = entries.subList(i, Math.min(entries.size(), i + 1000));
                if (batch.size() == 1) {
                    write(batch.get(0).getKey());
                    write(batch.get(0).getValue());
                    out.write(SETITEM);
                } else {
                    out.write(MARK);
                    for (Map.Entry<?, ?> e : batch) {
                        write(e.getKey());
                        write(e.getValue());
                    }
                    out.write(SETITEMS);
                }
            }
        }

        void enter(Object o) {
            if (active.put(o, Boolean.TRUE) != null) {
                throw new IllegalArgumentException("cannot pickle a recursive value");
            }
        }

        void leave(Object o) {
            active.remove(o);
        }
    }
}
