package dev.kiln.io;

import dev.kiln.mxnet.MxOracle;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Kiln's CSVIter and MNISTIter against the real MXNet 1.9.1 native iterators (libmxnet from
 * DJL's mxnet-native-mkl jar, called through MXNet's C API): every batch of several epochs must
 * be identical (values, shapes, dtypes, pad, and the CSV row ids). Skipped when libmxnet cannot
 * load.
 */
@ExtendWith(NoLeaks.class)
class MxIterOracleTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void oracle() {
        MxOracle.assumeAvailable();
    }

    static List<List<MxIterOracle.Batch>> kiln(DataIter it, int epochs) {
        List<List<MxIterOracle.Batch>> out = new ArrayList<>();
        try (it) {
            for (int e = 0; e < epochs; e++) {
                if (e > 0) {
                    it.reset();
                }
                List<MxIterOracle.Batch> ep = new ArrayList<>();
                for (DataBatch b : it) {
                    try (b) {
                        var d = b.data().get(0);
                        var l = b.label().get(0);
                        ep.add(new MxIterOracle.Batch(d.toDoubleArray(), d.shape().dims(), d.dtype().mxName(), l.toDoubleArray(),
                                l.shape().dims(), l.dtype().mxName(), b.pad(), b.index()));
                    }
                }
                out.add(ep);
            }
        }
        return out;
    }

    static void assertSame(List<List<MxIterOracle.Batch>> mx, List<List<MxIterOracle.Batch>> kiln, boolean compareIndex, String what) {
        assertSame(mx, kiln, compareIndex, false, what);
    }

    /** {@code validOnly}: compare only the non-pad rows of padded batches (MXNet's never-written slots hold garbage). */
    static void assertSame(List<List<MxIterOracle.Batch>> mx, List<List<MxIterOracle.Batch>> kiln, boolean compareIndex, boolean validOnly,
                           String what) {
        assertEquals(mx.size(), kiln.size(), what);
        for (int e = 0; e < mx.size(); e++) {
            assertEquals(mx.get(e).size(), kiln.get(e).size(), what + ": batches in epoch " + e);
            for (int i = 0; i < mx.get(e).size(); i++) {
                var m = mx.get(e).get(i);
                var k = kiln.get(e).get(i);
                String at = what + ": epoch " + e + " batch " + i;
                assertArrayEquals(m.dataShape(), k.dataShape(), at + " data shape");
                assertArrayEquals(m.labelShape(), k.labelShape(), at + " label shape");
                assertEquals(m.dataType().toLowerCase(Locale.ROOT), k.dataType(), at + " data dtype");
                assertEquals(m.labelType().toLowerCase(Locale.ROOT), k.labelType(), at + " label dtype");
                assertEquals(m.pad(), k.pad(), at + " pad");
                int rows = (int) m.dataShape()[0];
                int keep = validOnly ? rows - m.pad() : rows;
                int dRow = m.data().length / rows;
                int lRow = m.label().length / rows;
                assertArrayEquals(java.util.Arrays.copyOf(m.data(), keep * dRow), java.util.Arrays.copyOf(k.data(), keep * dRow), at + " data");
                assertArrayEquals(java.util.Arrays.copyOf(m.label(), keep * lRow), java.util.Arrays.copyOf(k.label(), keep * lRow), at + " label");
                if (compareIndex) {
                    assertArrayEquals(java.util.Arrays.copyOf(m.index(), keep), java.util.Arrays.copyOf(k.index(), keep), at + " index");
                }
            }
        }
    }

    static Map<String, String> params(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    @Test
    void csvIterMatchesMxnet() throws IOException {
        Path data = dir.resolve("d.csv");
        Path label = dir.resolve("l.csv");
        Path label3 = dir.resolve("l3.csv");
        StringBuilder d = new StringBuilder();
        StringBuilder l = new StringBuilder();
        StringBuilder l3 = new StringBuilder();
        for (int i = 1; i <= 11; i++) {
            d.append(i).append(',').append(i * 0.25).append(',').append(-i * 10).append('\n');
            l.append(i % 3).append('\n');
            l3.append(i).append(',').append(2 * i).append(',').append(3 * i).append('\n');
        }
        Files.writeString(data, d.toString());
        Files.writeString(label, l.toString());
        Files.writeString(label3, l3.toString());
        for (int batch : new int[] {2, 4, 5, 11, 13}) {
            for (boolean round : new boolean[] {true, false}) {
                String what = "batch " + batch + " round_batch " + round;
                var mx = MxIterOracle.run("CSVIter", params("data_csv", data.toString(), "data_shape", "(3,)", "label_csv", label.toString(),
                        "batch_size", Integer.toString(batch), "round_batch", round ? "True" : "False"), 4);
                var k = kiln(CSVIter.builder().setDataCsv(data).setDataShape(3).optLabelCsv(label).setBatchSize(batch).optRoundBatch(round)
                        .build(), 4);
                // batch 13 > 11 rows without round_batch: MXNet's two never-written slots hold uninitialised memory
                assertSame(mx, k, true, batch > 11 && !round, what);
            }
        }
        var mx = MxIterOracle.run("CSVIter", params("data_csv", data.toString(), "data_shape", "(1,3)", "label_csv", label3.toString(),
                "label_shape", "(3,)", "batch_size", "4"), 2);
        assertSame(mx, kiln(CSVIter.builder().setDataCsv(data).setDataShape(1, 3).optLabelCsv(label3).optLabelShape(3).setBatchSize(4).build(), 2),
                true, "label_shape (3,)");
        mx = MxIterOracle.run("CSVIter", params("data_csv", data.toString(), "data_shape", "(3,)", "label_shape", "(2,)", "batch_size", "3"), 2);
        assertSame(mx, kiln(CSVIter.builder().setDataCsv(data).setDataShape(3).optLabelShape(2).setBatchSize(3).build(), 2), true, "no label_csv");
        mx = MxIterOracle.run("CSVIter", params("data_csv", data.toString(), "data_shape", "(3,)", "label_csv", label.toString(),
                "label_shape", "(1,1)", "batch_size", "3"), 1);
        assertSame(mx, kiln(CSVIter.builder().setDataCsv(data).setDataShape(3).optLabelCsv(label).optLabelShape(1, 1).setBatchSize(3).build(), 1),
                true, "label_shape (1,1)");
    }

    @Test
    void csvIterDtypesMatchMxnet() throws IOException {
        Path i32 = dir.resolve("i32.csv");
        Files.writeString(i32, "200000001,-7\n2147483647,-2147483648\n5,6\n");
        Path i64 = dir.resolve("i64.csv");
        Files.writeString(i64, "2147483648,-1\n4503599627370497,3\n7,8\n");
        Path lab = dir.resolve("lab.csv");
        Files.writeString(lab, "1\n2\n3\n");
        for (String[] c : new String[][] {{"int32", i32.toString()}, {"int64", i64.toString()}, {"float32", i32.toString()}}) {
            var mx = MxIterOracle.run("CSVIter", params("data_csv", c[1], "data_shape", "(2,)", "label_csv", lab.toString(), "batch_size", "2",
                    "dtype", c[0]), 2);
            var k = kiln(CSVIter.builder().setDataCsv(Path.of(c[1])).setDataShape(2).optLabelCsv(lab).setBatchSize(2).optDType(c[0]).build(), 2);
            assertSame(mx, k, true, c[0]);
        }
    }

    static Path gunzip(String name) throws IOException {
        Path out = dir.resolve(name);
        if (!Files.exists(out)) {
            Path src = Path.of("data", "mnist", name + ".gz");
            if (!Files.exists(src)) {
                src = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "mnist", name + ".gz");
            }
            try (InputStream in = new GZIPInputStream(Files.newInputStream(src))) {
                Files.copy(in, out);
            }
        }
        return out;
    }

    @Test
    void mnistIterMatchesMxnet() throws IOException {
        Path img = gunzip("t10k-images-idx3-ubyte");
        Path lab = gunzip("t10k-labels-idx1-ubyte");
        String[][] cases = {
            {"100", "true", "0", "false", "1", "0"},
            {"128", "true", "3", "true", "1", "0"},
            {"64", "false", "0", "false", "1", "0"},
            {"50", "true", "11", "true", "3", "1"},
        };
        for (String[] c : cases) {
            String what = "batch " + c[0] + " shuffle " + c[1] + " seed " + c[2] + " flat " + c[3] + " part " + c[5] + "/" + c[4];
            var mx = MxIterOracle.run("MNISTIter", params("image", img.toString(), "label", lab.toString(), "batch_size", c[0], "shuffle",
                    c[1], "seed", c[2], "flat", c[3], "num_parts", c[4], "part_index", c[5], "silent", "True"), 1);
            var k = kiln(MNISTIter.builder().setImage(img).setLabel(lab).setBatchSize(Integer.parseInt(c[0])).optShuffle(Boolean.parseBoolean(c[1]))
                    .optSeed(Integer.parseInt(c[2])).optFlat(Boolean.parseBoolean(c[3])).optNumParts(Integer.parseInt(c[4]))
                    .optPartIndex(Integer.parseInt(c[5])).optSilent(true).build(), 1);
            assertSame(mx, k, false, what);
        }
    }
}
