package dev.kiln.ndarray;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/** {@link ParamsFile}: the real checkpoint files, MXNet's legacy fixture, hand-built V1/V3 records, corruption. */
class ParamsFileTest {
    private static Path checkpoints() {
        Path p = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "mxnet-checkpoints");
        assumeTrue(Files.isDirectory(p), "shared data folder missing: " + p);
        return p;
    }

    private static List<Path> filesEndingWith(Path dir, String suffix) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(f -> f.getFileName().toString().endsWith(suffix)).sorted().collect(Collectors.toList());
        }
    }

    // ---- real files ---------------------------------------------------------------------------

    @Test
    void everyParamsFileReadsAndV2FilesReencodeByteForByte() throws IOException {
        List<Path> files = filesEndingWith(checkpoints(), ".params");
        assertFalse(files.isEmpty(), "no .params files found");
        for (Path f : files) {
            byte[] bytes = Files.readAllBytes(f);
            List<ParamsFile.Entry> entries = ParamsFile.read(f);
            assertFalse(entries.isEmpty(), f.toString());
            if (ByteBuffer.wrap(bytes, 24, 4).order(ByteOrder.LITTLE_ENDIAN).getInt() == ParamsFile.V2_MAGIC) {
                assertArrayEquals(bytes, ParamsFile.encode(entries), "re-encoding " + f);
            }
            assertEquals(entries, ParamsFile.read(ParamsFile.encode(entries)), "round trip " + f);
        }
    }

    @Test
    void lenetCheckpointHasTheDocumentedParameters() throws IOException {
        List<ParamsFile.Entry> e = ParamsFile.read(checkpoints().resolve("weberlo-lenet/lenet-0001.params"));
        String p = "arg:hybridsequential0_";
        List<String> names = e.stream().map(ParamsFile.Entry::name).collect(Collectors.toList());
        assertEquals(List.of(p + "conv0_weight", p + "conv0_bias", p + "conv1_weight", p + "conv1_bias",
                p + "dense0_weight", p + "dense0_bias", p + "dense1_weight", p + "dense1_bias"), names);
        long[][] shapes = {{5, 1, 5, 5}, {5}, {5, 5, 5, 5}, {5}, {32, 80}, {32}, {10, 32}, {10}};
        for (int i = 0; i < shapes.length; i++) {
            assertArrayEquals(shapes[i], e.get(i).shape(), names.get(i));
            assertEquals(DType.FLOAT32, e.get(i).dtype());
            assertEquals(ParamsFile.DEV_CPU, e.get(i).devType());
            assertEquals(0, e.get(i).devId());
            for (float v : e.get(i).toFloatArray()) {
                assertTrue(Float.isFinite(v) && Math.abs(v) < 10, names.get(i) + " holds " + v);
            }
        }
        assertEquals(0.1603483f, e.get(0).toFloatArray()[0], 1e-7f);
        assertEquals(0.009106263f, e.get(7).toFloatArray()[9], 1e-9f);
    }

    @Test
    void legacyV0FixtureHoldsSixAranges() throws IOException {
        Path f = checkpoints().resolve("apache-mxnet-fixtures/legacy_ndarray.v0");
        List<ParamsFile.Entry> e = ParamsFile.read(f);
        assertEquals(6, e.size());
        float[] arange = new float[128];
        for (int i = 0; i < 128; i++) {
            arange[i] = i;
        }
        for (ParamsFile.Entry x : e) {
            assertEquals("", x.name());
            assertArrayEquals(new long[] {128}, x.shape());
            assertEquals(DType.FLOAT32, x.dtype());
            assertArrayEquals(arange, x.toFloatArray());
        }
        // written back in the current format, it reads the same
        byte[] v2 = ParamsFile.encode(e);
        assertEquals(ParamsFile.V2_MAGIC, ByteBuffer.wrap(v2, 24, 4).order(ByteOrder.LITTLE_ENDIAN).getInt());
        assertEquals(e, ParamsFile.read(v2));
    }

    // ---- the spec's annotated example ---------------------------------------------------------

    private static final String SPEC_142 =
            "1201000000000000" + "0000000000000000" + "0200000000000000"
            + "c9fa93f9" + "00000000" + "02000000" + "0100000000000000" + "0200000000000000"
            + "01000000" + "00000000" + "00000000" + "0000803f00000040"
            + "c9fa93f9" + "00000000" + "01000000" + "0100000000000000"
            + "01000000" + "00000000" + "00000000" + "0000003f"
            + "0200000000000000" + "0500000000000000" + "6172673a77" + "0500000000000000" + "6175783a6d";

    @Test
    void encodesTheSpecExampleByteForByte() {
        List<ParamsFile.Entry> entries = List.of(
                ParamsFile.Entry.ofFloats("arg:w", new long[] {1, 2}, new float[] {1, 2}),
                ParamsFile.Entry.ofFloats("aux:m", new long[] {1}, new float[] {0.5f}));
        byte[] bytes = ParamsFile.encode(entries);
        assertEquals(142, bytes.length);
        assertEquals(SPEC_142, HexFormat.of().formatHex(bytes));
        assertEquals(entries, ParamsFile.read(bytes));
    }

    @Test
    void unnamedListsWriteNoNames() {
        byte[] b = ParamsFile.encode(List.of(ParamsFile.Entry.ofFloats("", new long[] {2}, new float[] {1, 2})));
        assertEquals(0L, ByteBuffer.wrap(b, b.length - 8, 8).order(ByteOrder.LITTLE_ENDIAN).getLong());
        assertEquals("", ParamsFile.read(b).get(0).name());
    }

    @Test
    void mixedNamedAndUnnamedIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> ParamsFile.encode(List.of(
                ParamsFile.Entry.ofFloats("a", new long[] {1}, new float[] {1}),
                ParamsFile.Entry.ofFloats("", new long[] {1}, new float[] {1}))));
    }

    @Test
    void allDtypesAndNoneArraysRoundTrip() {
        List<ParamsFile.Entry> entries = new ArrayList<>();
        for (DType t : DType.values()) {
            byte[] data = new byte[3 * t.bytes()];
            for (int i = 0; i < data.length; i++) {
                data[i] = (byte) (i * 7 + t.id());
            }
            entries.add(new ParamsFile.Entry("x_" + t, t, 1, 0, new long[] {3, 1}, data));
        }
        entries.add(new ParamsFile.Entry("empty", DType.FLOAT32, 1, 0, null, new byte[0]));
        entries.add(new ParamsFile.Entry("zero_size", DType.FLOAT32, 1, 0, new long[] {0, 4}, new byte[0]));
        entries.add(new ParamsFile.Entry("gpu", DType.FLOAT32, 2, 1, new long[] {1}, new byte[4]));
        List<ParamsFile.Entry> back = ParamsFile.read(ParamsFile.encode(entries));
        assertEquals(entries, back);
        assertTrue(back.get(DType.values().length).isNone());
        assertNull(back.get(DType.values().length).shape());
    }

    @Test
    void scalarsCannotBeWrittenAsV2() {
        assertThrows(IllegalArgumentException.class, () -> ParamsFile.encode(
                List.of(new ParamsFile.Entry("s", DType.FLOAT32, 1, 0, new long[0], new byte[4]))));
    }

    @Test
    void entryChecksItsDataLength() {
        assertThrows(IllegalArgumentException.class,
                () -> new ParamsFile.Entry("a", DType.FLOAT32, 1, 0, new long[] {2}, new byte[4]));
        assertThrows(IllegalArgumentException.class,
                () -> new ParamsFile.Entry("a", DType.FLOAT32, 1, 0, new long[] {-1}, new byte[0]));
    }

    // ---- other record versions ----------------------------------------------------------------

    private static ByteBuffer header(int n, int capacity) {
        ByteBuffer b = ByteBuffer.allocate(capacity).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(0x112).putLong(0).putLong(n);
        return b;
    }

    private static byte[] done(ByteBuffer b) {
        return Arrays.copyOf(b.array(), b.position());
    }

    @Test
    void readsV1Records() {
        ByteBuffer b = header(1, 256);
        b.putInt(ParamsFile.V1_MAGIC).putInt(2).putLong(1).putLong(2);
        b.putInt(1).putInt(0).putInt(1).putDouble(1.5).putDouble(-2);
        b.putLong(1).putLong(1).put((byte) 'w');
        ParamsFile.Entry e = ParamsFile.read(done(b)).get(0);
        assertEquals("w", e.name());
        assertEquals(DType.FLOAT64, e.dtype());
        assertArrayEquals(new long[] {1, 2}, e.shape());
        assertEquals(-2.0, e.dataBuffer().getDouble(8));
    }

    @Test
    void readsV3ScalarsAndNoneArrays() {
        ByteBuffer b = header(3, 256);
        b.putInt(ParamsFile.V3_MAGIC).putInt(0).putInt(0); // scalar
        b.putInt(1).putInt(0).putInt(4).putInt(42);
        b.putInt(ParamsFile.V3_MAGIC).putInt(0).putInt(-1); // none
        b.putInt(ParamsFile.V3_MAGIC).putInt(0).putInt(1).putLong(2); // int64 (2,)
        b.putInt(1).putInt(0).putInt(6).putLong(7).putLong(-8);
        b.putLong(0);
        List<ParamsFile.Entry> e = ParamsFile.read(done(b));
        assertArrayEquals(new long[0], e.get(0).shape());
        assertEquals(1, e.get(0).size());
        assertEquals(42, e.get(0).dataBuffer().getInt(0));
        assertTrue(e.get(1).isNone());
        assertEquals(-8L, e.get(2).dataBuffer().getLong(8));
    }

    @Test
    void readsLegacyNoneRecord() {
        ByteBuffer b = header(1, 64);
        b.putInt(0).putLong(0);
        assertTrue(ParamsFile.read(done(b)).get(0).isNone());
    }

    // ---- corruption ---------------------------------------------------------------------------

    @Test
    void everyTruncationFailsCleanly() {
        byte[] full = HexFormat.of().parseHex(SPEC_142);
        for (int len = 0; len < full.length; len++) {
            byte[] cut = Arrays.copyOf(full, len);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(cut),
                    "length " + len);
            assertFalse(e.getMessage().isEmpty());
        }
    }

    @Test
    void wrongListMagic() {
        byte[] b = HexFormat.of().parseHex(SPEC_142);
        b[0] = 0x13;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(b));
        assertTrue(e.getMessage().contains("not an MXNet NDArray list file"), e.getMessage());
    }

    @Test
    void hugeCountsAndSizesAreRejectedWithoutAllocating() {
        ByteBuffer b = header(0, 64);
        b.putLong(16, Long.MAX_VALUE);
        b.position(24);
        assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(done(b)));

        ByteBuffer c = header(1, 64); // V2 record with a huge shape
        c.putInt(ParamsFile.V2_MAGIC).putInt(0).putInt(2).putLong(1L << 40).putLong(1L << 40);
        c.putInt(1).putInt(0).putInt(0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(done(c)));
        assertTrue(e.getMessage().contains("too large") || e.getMessage().contains("truncated"), e.getMessage());

        ByteBuffer d = header(1, 64); // plausible shape, data missing
        d.putInt(ParamsFile.V2_MAGIC).putInt(0).putInt(1).putLong(1_000_000_000L);
        d.putInt(1).putInt(0).putInt(0);
        e = assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(done(d)));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());

        ByteBuffer f = header(1, 64); // ndim beyond reason
        f.putInt(ParamsFile.V2_MAGIC).putInt(0).putInt(1 << 30);
        assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(done(f)));

        ByteBuffer g = header(1, 64); // unknown magic that is no plausible legacy ndim
        g.putInt(0x7fff0000).putLong(0);
        assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(done(g)));
    }

    @Test
    void negativeDimsBadDtypesSparseAndBadNameCounts() {
        ByteBuffer a = header(1, 64);
        a.putInt(ParamsFile.V2_MAGIC).putInt(0).putInt(1).putLong(-5);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(done(a)));
        assertTrue(e.getMessage().contains("negative"), e.getMessage());

        ByteBuffer b = header(1, 64);
        b.putInt(ParamsFile.V2_MAGIC).putInt(0).putInt(1).putLong(1).putInt(1).putInt(0).putInt(13).putShort((short) 0);
        e = assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(done(b)));
        assertTrue(e.getMessage().contains("dtype"), e.getMessage());

        ByteBuffer c = header(1, 64);
        c.putInt(ParamsFile.V2_MAGIC).putInt(1);
        e = assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(done(c)));
        assertTrue(e.getMessage().contains("row_sparse"), e.getMessage());

        byte[] spec = HexFormat.of().parseHex(SPEC_142);
        ByteBuffer d = ByteBuffer.wrap(spec).order(ByteOrder.LITTLE_ENDIAN);
        d.putLong(108, 1); // name count 1 for 2 arrays
        e = assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(spec));
        assertTrue(e.getMessage().contains("name count"), e.getMessage());

        byte[] spec2 = HexFormat.of().parseHex(SPEC_142);
        ByteBuffer.wrap(spec2).order(ByteOrder.LITTLE_ENDIAN).putLong(116, Long.MAX_VALUE); // name length
        assertThrows(IllegalArgumentException.class, () -> ParamsFile.read(spec2));
    }

    @Test
    void randomGarbageNeverEscapesAsAnotherException() {
        java.util.Random r = new java.util.Random(42);
        byte[] valid = HexFormat.of().parseHex(SPEC_142);
        for (int i = 0; i < 5000; i++) {
            byte[] b = valid.clone();
            int flips = 1 + r.nextInt(4);
            for (int k = 0; k < flips; k++) {
                b[r.nextInt(b.length)] = (byte) r.nextInt(256);
            }
            try {
                ParamsFile.read(b);
            } catch (IllegalArgumentException expected) {
                // fine
            }
        }
    }

    // ---- files --------------------------------------------------------------------------------

    @Test
    void writeIsAtomicAndReplaces(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("net-0001.params");
        List<ParamsFile.Entry> one = List.of(ParamsFile.Entry.ofFloats("arg:a", new long[] {2}, new float[] {1, 2}));
        ParamsFile.write(f, one);
        assertEquals(one, ParamsFile.read(f));
        List<ParamsFile.Entry> two = List.of(ParamsFile.Entry.ofFloats("arg:b", new long[] {1}, new float[] {3}));
        ParamsFile.write(f, two);
        assertEquals(two, ParamsFile.read(f));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of(f), s.collect(Collectors.toList()), "no temporary files are left behind");
        }
    }

    @Test
    void readPathNamesTheFileInErrors(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("bad.params");
        Files.write(f, new byte[] {1, 2, 3});
        IOException e = assertThrows(IOException.class, () -> ParamsFile.read(f));
        assertTrue(e.getMessage().contains("bad.params"), e.getMessage());
    }
}
