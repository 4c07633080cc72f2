package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;

/**
 * The pickle codec: pickles written by CPython 3 (protocols 2-5, hex fixtures produced with
 * {@code pickle.dumps} on a stand-in {@code mxnet.ndarray.ndarray.NDArray} whose {@code
 * __reduce__} is MXNet's), hand-built protocol-4 opcode sequences, the writer's exact opcodes,
 * and malformed input.
 */
class PickleTest {
    static final HexFormat HEX = HexFormat.of();
    /** The raw record of float32 [1.5, -2.0] (spec §7.4). */
    static final String REC = "c9fa93f9000000000100000002000000000000000100000000000000000000000000c03f000000c0";

    // pickle.dumps({0: NDArray(rec[1.5,-2]), 1: None, 'fc1_weight': (NDArray(rec[0.25]), NDArray(rec[-1,2,3]))}, protocol=p)
    static final String P2 = "80027d7100284b00636d786e65742e6e6461727261792e6e6461727261790a4e4441727261790a71014e8571025271037d7104580600000068616e646c657105635f5f6275696c74696e5f5f0a6279746561727261790a7106635f636f646563730a656e636f64650a7107582e000000c389c3bac293c3b9000000000100000002000000000000000100000000000000000000000000c3803f000000c380710858060000006c6174696e31710986710a52710b85710c52710d73624b014e580a0000006663315f776569676874710e6801680252710f7d71106805680668075829000000c389c3bac293c3b9000000000100000001000000000000000100000000000000000000000000c2803e711168098671125271138571145271157362680168025271167d71176805680668075832000000c389c3bac293c3b9000000000100000003000000000000000100000000000000000000000000c280c2bf00000040000040407118680986711952711a85711b52711c736286711d752e";
    static final String P3 = "80037d7100284b00636d786e65742e6e6461727261792e6e6461727261790a4e4441727261790a71014e8571025271037d7104580600000068616e646c657105636275696c74696e730a6279746561727261790a71064328c9fa93f9000000000100000002000000000000000100000000000000000000000000c03f000000c0710785710852710973624b014e580a0000006663315f776569676874710a6801680252710b7d710c680568064324c9fa93f9000000000100000001000000000000000100000000000000000000000000803e710d85710e52710f7362680168025271107d711168056806432cc9fa93f900000000010000000300000000000000010000000000000000000000000080bf000000400000404071128571135271147362867115752e";
    static final String P4 = "80049511010000000000007d94284b008c156d786e65742e6e6461727261792e6e646172726179948c074e4441727261799493944e859452947d948c0668616e646c65948c086275696c74696e73948c096279746561727261799493944328c9fa93f9000000000100000002000000000000000100000000000000000000000000c03f000000c0948594529473624b014e8c0a6663315f776569676874946803680452947d946807680a4324c9fa93f9000000000100000001000000000000000100000000000000000000000000803e948594529473626803680452947d946807680a432cc9fa93f900000000010000000300000000000000010000000000000000000000000080bf0000004000004040948594529473628694752e";
    static final String P5 = "800595fd000000000000007d94284b008c156d786e65742e6e6461727261792e6e646172726179948c074e4441727261799493944e859452947d948c0668616e646c6594962800000000000000c9fa93f9000000000100000002000000000000000100000000000000000000000000c03f000000c09473624b014e8c0a6663315f776569676874946803680452947d946807962400000000000000c9fa93f9000000000100000001000000000000000100000000000000000000000000803e9473626803680452947d946807962c00000000000000c9fa93f900000000010000000300000000000000010000000000000000000000000080bf00000040000040409473628694752e";
    // pickle.dumps(({0: None}, SGD-like object with a shared _index_update_count dict), protocol=4)
    static final String OPT4 = "800495f1000000000000007d944b004e738c196d786e65742e6f7074696d697a65722e6f7074696d697a6572948c035347449493942981947d94288c026c7294473fb999999999999a8c086d6f6d656e74756d94473feccccccccccccd8c0a6e756d5f757064617465944b038c0d636c69705f6772616469656e74944e8c076c725f6d756c74947d948c08696478326e616d65947d944b008c0966635f77656967687494738c0f6d756c74695f707265636973696f6e94898c185f616c6c5f696e6465785f7570646174655f636f756e7473947d944b007d944b004b0373738c135f696e6465785f7570646174655f636f756e74946812756286942e";

    static byte[] handleOf(Object ndarray) {
        Pickle.PObject p = assertInstanceOf(Pickle.PObject.class, ndarray);
        assertEquals(new Pickle.Global("mxnet.ndarray.ndarray", "NDArray"), p.cls);
        assertEquals(Pickle.Tuple.of((Object) null), p.args);
        Map<?, ?> st = assertInstanceOf(Map.class, p.state);
        return assertInstanceOf(Pickle.ByteArray.class, st.get("handle")).bytes();
    }

    @Test
    void readsCPythonStatesPicklesOfEveryProtocol() {
        for (String hex : List.of(P2, P3, P4, P5)) {
            Map<?, ?> d = assertInstanceOf(Map.class, Pickle.load(HEX.parseHex(hex)));
            assertEquals(List.of(0L, 1L, "fc1_weight"), new ArrayList<>(d.keySet()), hex.substring(0, 4));
            assertArrayEquals(HEX.parseHex(REC), handleOf(d.get(0L)));
            assertNull(d.get(1L));
            Pickle.Tuple t = assertInstanceOf(Pickle.Tuple.class, d.get("fc1_weight"));
            assertEquals(2, t.size());
            assertEquals(44, handleOf(t.get(1)).length);
        }
    }

    @Test
    void readsAnObjectWithSharedMemoEntries() {
        Pickle.Tuple t = assertInstanceOf(Pickle.Tuple.class, Pickle.load(HEX.parseHex(OPT4)));
        Map<?, ?> states = assertInstanceOf(Map.class, t.get(0));
        assertTrue(states.containsKey(0L) && states.get(0L) == null);
        Pickle.PObject o = assertInstanceOf(Pickle.PObject.class, t.get(1));
        assertEquals(new Pickle.Global("mxnet.optimizer.optimizer", "SGD"), o.cls);
        assertTrue(o.newObj);
        Map<?, ?> d = assertInstanceOf(Map.class, o.state);
        assertEquals(0.1, d.get("lr"));
        assertEquals(3L, d.get("num_update"));
        assertEquals(Boolean.FALSE, d.get("multi_precision"));
        assertEquals(Map.of(0L, "fc_weight"), d.get("idx2name"));
        Map<?, ?> all = assertInstanceOf(Map.class, d.get("_all_index_update_counts"));
        assertSame(all.get(0L), d.get("_index_update_count"));  // BINGET of the memoized dict
    }

    /** A tiny assembler for hand-built opcode sequences. */
    static final class Ops {
        final ByteArrayOutputStream b = new ByteArrayOutputStream();

        Ops op(int... bytes) {
            for (int x : bytes) {
                b.write(x);
            }
            return this;
        }

        Ops le32(long v) {
            return op((int) v & 0xff, (int) (v >> 8) & 0xff, (int) (v >> 16) & 0xff, (int) (v >> 24) & 0xff);
        }

        Ops le64(long v) {
            le32(v);
            return le32(v >>> 32);
        }

        Ops raw(byte[] x) {
            b.writeBytes(x);
            return this;
        }

        Ops shortUnicode(String s) {
            byte[] u = s.getBytes(StandardCharsets.UTF_8);
            return op(Pickle.SHORT_BINUNICODE, u.length).raw(u).op(Pickle.MEMOIZE);
        }

        byte[] bytes() {
            return b.toByteArray();
        }
    }

    @Test
    void readsHandBuiltProtocol4WithFrameMemoizeAndShortUnicode() {
        byte[] rec = HEX.parseHex(REC);
        Ops body = new Ops().op(Pickle.EMPTY_DICT, Pickle.MEMOIZE, Pickle.MARK)
                .op(Pickle.BININT1, 0)
                .shortUnicode("mxnet.ndarray.ndarray").shortUnicode("NDArray").op(Pickle.STACK_GLOBAL, Pickle.MEMOIZE)
                .op(Pickle.NONE, Pickle.TUPLE1, Pickle.MEMOIZE, Pickle.REDUCE, Pickle.MEMOIZE)
                .op(Pickle.EMPTY_DICT, Pickle.MEMOIZE).shortUnicode("handle")
                .shortUnicode("builtins").shortUnicode("bytearray").op(Pickle.STACK_GLOBAL, Pickle.MEMOIZE)
                .op(Pickle.SHORT_BINBYTES, rec.length).raw(rec).op(Pickle.MEMOIZE)
                .op(Pickle.TUPLE1, Pickle.MEMOIZE, Pickle.REDUCE, Pickle.MEMOIZE, Pickle.SETITEM, Pickle.BUILD)
                .op(Pickle.BININT2, 0x34, 0x12)                             // key 0x1234
                .op(Pickle.BINGET, 3)                                        // the NDArray class again
                .op(Pickle.NONE, Pickle.TUPLE1, Pickle.REDUCE)
                .op(Pickle.EMPTY_DICT).shortUnicode("handle")
                .op(Pickle.BYTEARRAY8).le64(rec.length).raw(rec)
                .op(Pickle.SETITEM, Pickle.BUILD)
                .op(Pickle.LONG1, 1, 0xff)                                   // key -1
                .op(Pickle.EMPTY_TUPLE)
                .op(Pickle.BINUNICODE8).le64(3).raw("fc2".getBytes(StandardCharsets.UTF_8))
                .op(Pickle.NEWTRUE, Pickle.NEWFALSE, Pickle.BINFLOAT).raw(HEX.parseHex("3ff8000000000000"))
                .op(Pickle.TUPLE3)
                .op(Pickle.SETITEMS, Pickle.STOP);
        byte[] framed = new Ops().op(Pickle.PROTO, 4, Pickle.FRAME).le64(body.bytes().length).raw(body.bytes()).bytes();
        Map<?, ?> d = assertInstanceOf(Map.class, Pickle.load(framed));
        assertEquals(List.of(0L, 0x1234L, -1L, "fc2"), new ArrayList<>(d.keySet()));
        assertArrayEquals(rec, handleOf(d.get(0L)));
        assertArrayEquals(rec, handleOf(d.get(0x1234L)));
        assertEquals(Pickle.Tuple.of(), d.get(-1L));
        assertEquals(Pickle.Tuple.of(true, false, 1.5), d.get("fc2"));
    }

    @Test
    void readsTheRemainingOpcodes() {
        // [1, 2**70, 'a', b'xy', frozenset, {..}, None] via LIST/APPENDS/LONG4/BINUNICODE/BINBYTES/BINBYTES8/...
        byte[] big = new BigInteger("2").pow(70).toByteArray();
        byte[] bigLe = new byte[big.length];
        for (int i = 0; i < big.length; i++) {
            bigLe[i] = big[big.length - 1 - i];
        }
        Ops o = new Ops().op(Pickle.PROTO, 4, Pickle.EMPTY_LIST, Pickle.BINPUT, 7, Pickle.MARK)
                .op(Pickle.BININT).le32(-5)
                .op(Pickle.LONG4).le32(bigLe.length).raw(bigLe)
                .op(Pickle.BINUNICODE).le32(1).raw(new byte[] {'a'})
                .op(Pickle.BINBYTES).le32(2).raw(new byte[] {'x', 'y'})
                .op(Pickle.BINBYTES8).le64(1).raw(new byte[] {'z'})
                .op(Pickle.MARK, Pickle.BININT1, 3, Pickle.BININT1, 4, Pickle.FROZENSET)
                .op(Pickle.MARK, Pickle.BININT1, 1, Pickle.BININT1, 2, Pickle.DICT)
                .op(Pickle.EMPTY_SET, Pickle.MARK, Pickle.BININT1, 9, Pickle.ADDITEMS)
                .op(Pickle.NONE, Pickle.DUP, Pickle.POP)
                .op(Pickle.LONG_BINPUT).le32(300).op(Pickle.POP)
                .op(Pickle.LONG_BINGET).le32(300)
                .op(Pickle.MARK, Pickle.BININT1, 6, Pickle.LIST)
                .op(Pickle.MARK, Pickle.BININT1, 8, Pickle.POP_MARK)
                .op(Pickle.APPENDS)
                .op(Pickle.BININT1, 42, Pickle.APPEND)
                .op(Pickle.GLOBAL).raw("pkg.mod\nCls\n".getBytes(StandardCharsets.US_ASCII))
                .op(Pickle.EMPTY_TUPLE, Pickle.NEWOBJ, Pickle.EMPTY_DICT, Pickle.SHORT_BINUNICODE, 1, 'k', Pickle.BININT1, 1,
                        Pickle.SETITEM, Pickle.BUILD, Pickle.APPEND)
                .op(Pickle.BINGET, 7, Pickle.POP)
                .op(Pickle.STOP);
        List<?> l = assertInstanceOf(List.class, Pickle.load(o.bytes()));
        assertEquals(-5L, l.get(0));
        assertEquals(new BigInteger("2").pow(70), l.get(1));
        assertEquals("a", l.get(2));
        assertArrayEquals(new byte[] {'x', 'y'}, (byte[]) l.get(3));
        assertArrayEquals(new byte[] {'z'}, (byte[]) l.get(4));
        assertEquals(Set.of(3L, 4L), l.get(5));
        assertEquals(Map.of(1L, 2L), l.get(6));
        assertEquals(Set.of(9L), l.get(7));
        assertNull(l.get(8));  // NONE DUP POP, then PUT/POP/GET of the same None
        assertEquals(List.of(6L), l.get(9));
        assertEquals(42L, l.get(10));
        assertEquals(12, l.size());
        Pickle.PObject p = assertInstanceOf(Pickle.PObject.class, l.get(11));
        assertEquals("pkg.mod.Cls", p.cls.toString());
        assertEquals(Map.of("k", 1L), p.state);
    }

    @Test
    void readsProtocol0TextOpcodes() {
        byte[] p0 = "(lp0\nI12\naI01\naL123456789012345678901L\naF2.5\naS'h\\'i'\naVx\\u00e9\nag0\na.".getBytes(
                StandardCharsets.ISO_8859_1);
        List<?> l = assertInstanceOf(List.class, Pickle.load(p0));
        assertEquals(12L, l.get(0));
        assertEquals(true, l.get(1));
        assertEquals(new BigInteger("123456789012345678901"), l.get(2));
        assertEquals(2.5, l.get(3));
        assertEquals("h'i", l.get(4));
        assertEquals("x\u00e9", l.get(5));
        assertSame(l, l.get(6));
    }

    @Test
    void writesTheMinimalStatesSequenceOfTheSpec() {
        byte[] rec = HEX.parseHex(REC);
        Map<Object, Object> handle = new LinkedHashMap<>();
        handle.put("handle", new Pickle.ByteArray(rec));
        Pickle.PObject nd = new Pickle.PObject(new Pickle.Global("mxnet.ndarray.ndarray", "NDArray"),
                Pickle.Tuple.of((Object) null), false, handle);
        Map<Object, Object> states = new LinkedHashMap<>();
        states.put(0, nd);
        states.put(300, null);
        states.put("fc1_bias", Pickle.Tuple.of(null, null));
        byte[] got = Pickle.dump(states);
        Ops want = new Ops().op(Pickle.PROTO, 3, Pickle.EMPTY_DICT, Pickle.MARK)
                .op(Pickle.BININT1, 0)
                .op(Pickle.GLOBAL).raw("mxnet.ndarray.ndarray\nNDArray\n".getBytes(StandardCharsets.US_ASCII))
                .op(Pickle.NONE, Pickle.TUPLE1, Pickle.REDUCE, Pickle.EMPTY_DICT)
                .op(Pickle.BINUNICODE).le32(6).raw("handle".getBytes(StandardCharsets.US_ASCII))
                .op(Pickle.GLOBAL).raw("builtins\nbytearray\n".getBytes(StandardCharsets.US_ASCII))
                .op(Pickle.SHORT_BINBYTES, rec.length).raw(rec)
                .op(Pickle.TUPLE1, Pickle.REDUCE, Pickle.SETITEM, Pickle.BUILD)
                .op(Pickle.BININT2, 300 & 0xff, 300 >> 8, Pickle.NONE)
                .op(Pickle.BINUNICODE).le32(8).raw("fc1_bias".getBytes(StandardCharsets.US_ASCII))
                .op(Pickle.NONE, Pickle.NONE, Pickle.TUPLE2)
                .op(Pickle.SETITEMS, Pickle.STOP);
        assertEquals(HEX.formatHex(want.bytes()), HEX.formatHex(got));
        // and it reads back
        Map<?, ?> back = assertInstanceOf(Map.class, Pickle.load(got));
        assertArrayEquals(rec, handleOf(back.get(0L)));
        assertTrue(back.containsKey(300L));
        assertEquals(Pickle.Tuple.of(null, null), back.get("fc1_bias"));
    }

    @Test
    void writerRoundTripsEveryValueTypeAndSharedContainers() {
        Map<Object, Object> shared = new LinkedHashMap<>();
        shared.put(1, 5L);
        List<Object> values = new ArrayList<>(List.of(true, false, 0, 255, 256, 65536, -1, Long.MAX_VALUE, Long.MIN_VALUE,
                new BigInteger("-123456789012345678901234567890"), 0.1, -0.0, "héllo", new byte[300], new Pickle.ByteArray(new byte[2]),
                Pickle.Tuple.of(), Pickle.Tuple.of(1L, 2L, 3L, 4L), new Pickle.Global("a.b", "C"), shared, shared));
        values.add(null);
        List<Object> big = new ArrayList<>();
        for (int i = 0; i < 1500; i++) {
            big.add(i);
        }
        values.add(big);
        List<?> back = assertInstanceOf(List.class, Pickle.load(Pickle.dump(values)));
        assertEquals(values.size(), back.size());
        for (int i = 0; i < values.size(); i++) {
            Object want = values.get(i) instanceof Integer n ? (Object) n.longValue() : values.get(i);
            if (want instanceof List<?> wl) {
                List<Object> wLong = new ArrayList<>();
                wl.forEach(x -> wLong.add(((Integer) x).longValue()));
                want = wLong;
            }
            if (want instanceof Map<?, ?>) {
                want = Map.of(1L, 5L);
            }
            assertTrue(Pickle.deepEquals(want, back.get(i)), "value " + i + ": " + values.get(i) + " vs " + back.get(i));
        }
        assertSame(back.get(18), back.get(19));
    }

    @Test
    void writerMemoizesSelfReferenceAndRejectsUnknownTypes() {
        List<Object> self = new ArrayList<>();
        self.add(self);
        List<?> back = assertInstanceOf(List.class, Pickle.load(Pickle.dump(self)));
        assertSame(back, back.get(0));
        assertThrows(IllegalArgumentException.class, () -> Pickle.dump(new Object()));
    }

    @Test
    void malformedInputIsRejectedWithOffsets() {
        byte[] p4 = HEX.parseHex(P4);
        // every truncation fails cleanly
        for (int n = 0; n < p4.length; n++) {
            byte[] cut = java.util.Arrays.copyOf(p4, n);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Pickle.load(cut), "length " + n);
            assertTrue(e.getMessage().startsWith("invalid pickle at offset"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> Pickle.load(new byte[] {(byte) 0x80, 6, 'N', '.'}));
        IllegalArgumentException unk = assertThrows(IllegalArgumentException.class,
                () -> Pickle.load(new byte[] {(byte) 0x80, 4, 'P', 'x', '\n', '.'}));  // PERSID
        assertTrue(unk.getMessage().contains("unsupported pickle opcode 0x50"), unk.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Pickle.load(new byte[] {'h', 3, '.'}));       // undefined memo
        assertThrows(IllegalArgumentException.class, () -> Pickle.load(new byte[] {'N', 'N', '.'}));     // two values left
        assertThrows(IllegalArgumentException.class, () -> Pickle.load(new byte[] {'t', '.'}));          // no mark
        assertThrows(IllegalArgumentException.class, () -> Pickle.load(new byte[] {'N', 's', '.'}));     // SETITEM on None
        assertThrows(IllegalArgumentException.class, () -> Pickle.load(new byte[] {'}', ']', 'N', 's', '.'}));  // list key
        assertThrows(IllegalArgumentException.class,   // BINBYTES claiming 2 GB
                () -> Pickle.load(new byte[] {'B', (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x7f, '.'}));
        assertThrows(IllegalArgumentException.class,   // BINUNICODE with invalid UTF-8
                () -> Pickle.load(new byte[] {'X', 1, 0, 0, 0, (byte) 0xff, '.'}));
        assertThrows(IllegalArgumentException.class, () -> Pickle.load(new byte[] {'N', 'N', 'R', '.'}));  // REDUCE on None
    }
}
