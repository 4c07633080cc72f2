package dev.kiln.io;

import dev.kiln.ndarray.DType;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(NoLeaks.class)
class CSVIterTest {
    @TempDir
    Path dir;

    static Path sklearn() {
        return Path.of(System.getProperty("kiln.shared", "../shared"), "data", "sklearn");
    }

    Path write(String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, text);
        return p;
    }

    /** One batch: data as double, label as double, pad, index. */
    record B(double[] data, long[] dataShape, double[] label, long[] labelShape, int pad, long[] index) {}

    static List<B> epoch(DataIter it) {
        List<B> out = new ArrayList<>();
        for (DataBatch b : it) {
            try (b) {
                out.add(new B(b.data().get(0).toDoubleArray(), b.data().get(0).shape().dims(), b.label().get(0).toDoubleArray(),
                        b.label().get(0).shape().dims(), b.pad(), b.index()));
            }
        }
        return out;
    }

    static double[] d(double... v) {
        return v;
    }

    static void assertBatch(B b, double[] rows, int pad) {
        double[] data = new double[rows.length * 2];
        for (int i = 0; i < rows.length; i++) {
            data[2 * i] = rows[i];
            data[2 * i + 1] = 10 * rows[i];
        }
        assertArrayEquals(data, b.data(), "data " + Arrays.toString(b.data()));
        assertArrayEquals(rows, b.label(), "label");
        assertEquals(pad, b.pad(), "pad");
    }

    CSVIter fiveRows(boolean roundBatch) throws IOException {
        Path data = write("d.csv", "1,10\n2,20\n3,30\n4,40\n5,50\n");
        Path label = write("l.csv", "1\n2\n3\n4\n5\n");
        return CSVIter.builder().setDataCsv(data).setDataShape(2).optLabelCsv(label).setBatchSize(2).optRoundBatch(roundBatch).build();
    }

    // spec 6.5, verified on MXNet 1.9.1: rows [1,2] [3,4] [5,1] pad 1, then [2,3] [4,5], then from row 1 again
    @Test
    void roundBatchContinuesTheNextEpochAfterTheWrappedRows() throws IOException {
        try (CSVIter it = fiveRows(true)) {
            for (int cycle = 0; cycle < 2; cycle++) {
                List<B> e0 = epoch(it);
                assertEquals(3, e0.size());
                assertBatch(e0.get(0), d(1, 2), 0);
                assertBatch(e0.get(1), d(3, 4), 0);
                assertBatch(e0.get(2), d(5, 1), 1);
                assertArrayEquals(new long[] {4, 0}, e0.get(2).index());
                it.reset();
                List<B> e1 = epoch(it);
                assertEquals(2, e1.size());
                assertBatch(e1.get(0), d(2, 3), 0);
                assertBatch(e1.get(1), d(4, 5), 0);
                assertArrayEquals(new long[] {1, 2}, e1.get(0).index());
                it.reset();
            }
        }
    }

    @Test
    void withoutRoundBatchTheLastBatchKeepsStaleValues() throws IOException {
        try (CSVIter it = fiveRows(false)) {
            for (int e = 0; e < 3; e++) {
                List<B> ep = epoch(it);
                assertEquals(3, ep.size());
                assertBatch(ep.get(0), d(1, 2), 0);
                assertBatch(ep.get(1), d(3, 4), 0);
                assertBatch(ep.get(2), d(5, 4), 1); // slot 1 still holds row 4 from the previous batch
                assertArrayEquals(new long[] {4, 3}, ep.get(2).index());
                it.reset();
            }
        }
    }

    @Test
    void shapesAndDescriptions() throws IOException {
        try (CSVIter it = fiveRows(true)) {
            assertEquals("[DataDesc[data,(2, 2),float32,NCHW]]", it.provideData().toString());
            assertEquals("[DataDesc[softmax_label,(2,),float32,NCHW]]", it.provideLabel().toString(), "(B,1) label squeezed to (B,)");
            assertEquals(2, it.batchSize());
            try (DataBatch b = it.next()) {
                assertEquals("DataBatch: data shapes: [(2, 2)] label shapes: [(2,)]", b.toString());
                assertEquals(it.provideData(), b.provideData());
            }
        }
        Path data = write("img.csv", "1,2,3,4,5,6\n7,8,9,10,11,12\n");
        Path label = write("lab.csv", "1,2,3\n4,5,6\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(data).setDataShape(1, 2, 3).optLabelCsv(label).optLabelShape(3).setBatchSize(2)
                .optDataName("x").optLabelName("y").build(); DataBatch b = it.next()) {
            assertEquals("[DataDesc[x,(2, 1, 2, 3),float32,NCHW]]", it.provideData().toString());
            assertArrayEquals(new long[] {2, 1, 2, 3}, b.data().get(0).shape().dims());
            assertArrayEquals(new long[] {2, 3}, b.label().get(0).shape().dims());
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, b.label().get(0).toFloatArray());
        }
    }

    @Test
    void withoutLabelFileEveryLabelIsZero() throws IOException {
        Path data = write("d.csv", "1,10\n2,20\n3,30\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(data).setDataShape(2).optLabelCsv("NULL").optLabelShape(3).setBatchSize(2).build()) {
            assertEquals("[DataDesc[softmax_label,(2,),float32,NCHW]]", it.provideLabel().toString(), "MXNet ignores label_shape here");
            List<B> ep = epoch(it);
            assertEquals(2, ep.size());
            assertArrayEquals(d(0, 0), ep.get(1).label());
            assertArrayEquals(d(3, 30, 1, 10), ep.get(1).data());
        }
    }

    // test_io.py test_CSVIter: int32 200000001, int64 2147483648, float32 1 (values a float cannot hold exactly)
    @Test
    void dtypesParseExactly() throws IOException {
        String[] types = {"float32", "int32", "int64"};
        String[] entries = {"1", "200000001", "2147483648"};
        for (int t = 0; t < 3; t++) {
            StringBuilder data = new StringBuilder();
            StringBuilder label = new StringBuilder();
            for (int i = 0; i < 10; i++) {
                data.append(String.join(",", java.util.Collections.nCopies(64, entries[t]))).append('\n');
                label.append("0\n");
            }
            Path dp = write("data-" + t + ".t", data.toString());
            Path lp = write("label-" + t + ".t", label.toString());
            try (CSVIter it = CSVIter.builder().setDataCsv(dp).setDataShape(8, 8).optLabelCsv(lp).setBatchSize(5).optDType(types[t]).build()) {
                int n = 0;
                for (DataBatch b : it) {
                    try (b) {
                        DType dt = DType.fromName(types[t]);
                        assertEquals(dt, b.data().get(0).dtype());
                        assertEquals(dt, b.label().get(0).dtype(), "label has the data's dtype");
                        assertArrayEquals(new long[] {5, 8, 8}, b.data().get(0).shape().dims());
                        java.nio.ByteBuffer bb = java.nio.ByteBuffer.wrap(b.data().get(0).toBytes()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                        for (int i = 0; i < 5 * 64; i++) {
                            switch (t) {
                                case 0 -> assertEquals(1f, bb.getFloat());
                                case 1 -> assertEquals(200000001, bb.getInt());
                                default -> assertEquals(2147483648L, bb.getLong());
                            }
                        }
                        n++;
                    }
                }
                assertEquals(2, n);
            }
        }
        Path big = write("big.csv", "9007199254740993,-9223372036854775808\n3.0,1e3\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(big).setDataShape(2).setBatchSize(2).optDType(DType.INT64).build();
             DataBatch b = it.next()) {
            java.nio.ByteBuffer bb = java.nio.ByteBuffer.wrap(b.data().get(0).toBytes()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            assertEquals(9007199254740993L, bb.getLong());
            assertEquals(Long.MIN_VALUE, bb.getLong());
            assertEquals(3L, bb.getLong(), "integral decimals are accepted");
            assertEquals(1000L, bb.getLong());
        }
        assertThrows(IllegalArgumentException.class, () -> CSVIter.builder().setDataCsv(big).setDataShape(2).setBatchSize(2)
                .optDType(DType.FLOAT64).build());
    }

    @Test
    void malformedValuesNameFileAndLine() throws IOException {
        Path data = write("bad.csv", "1,2\n\n3,x\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(data).setDataShape(2).setBatchSize(2).build()) {
            MalformedDataException e = assertThrows(MalformedDataException.class, it::hasNext);
            assertEquals(data, e.file());
            assertEquals(3, e.line(), "blank lines count in the line number");
            assertTrue(e.getMessage().contains("bad.csv:3") && e.getMessage().contains("'x'") && e.getMessage().contains("column 2")
                    && e.getMessage().contains("float32"), e.getMessage());
        }
        Path ints = write("ints.csv", "1,2.5\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(ints).setDataShape(2).setBatchSize(1).optDType("int32").build()) {
            MalformedDataException e = assertThrows(MalformedDataException.class, it::next);
            assertTrue(e.getMessage().contains("ints.csv:1") && e.getMessage().contains("'2.5'") && e.getMessage().contains("int32"), e.getMessage());
        }
        Path range = write("range.csv", "2147483648\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(range).setDataShape(1).setBatchSize(1).optDType("int32").build()) {
            MalformedDataException e = assertThrows(MalformedDataException.class, it::next);
            assertTrue(e.getMessage().contains("out of int32 range"), e.getMessage());
        }
        Path empty = write("empty-field.csv", "1,,2\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(empty).setDataShape(3).setBatchSize(1).build()) {
            MalformedDataException e = assertThrows(MalformedDataException.class, it::next);
            assertTrue(e.getMessage().contains("empty value in column 2"), e.getMessage());
        }
        Path header = write("header.csv", "a,b\n1,2\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(header).setDataShape(2).setBatchSize(1).build()) {
            MalformedDataException e = assertThrows(MalformedDataException.class, it::next);
            assertTrue(e.getMessage().contains("header.csv:1") && e.getMessage().contains("'a'"), e.getMessage());
        }
    }

    @Test
    void rowLengthMustMatchTheShape() throws IOException {
        Path data = write("d.csv", "1,2,3\n4,5\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(data).setDataShape(3).setBatchSize(2).build()) {
            MalformedDataException e = assertThrows(MalformedDataException.class, it::hasNext);
            assertTrue(e.getMessage().contains("d.csv:2") && e.getMessage().contains("row has 2 values")
                    && e.getMessage().contains("data_shape (3,) needs 3"), e.getMessage());
        }
        Path label = write("l.csv", "1,2\n3,4\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(write("ok.csv", "1\n2\n")).setDataShape(1).optLabelCsv(label).setBatchSize(2).build()) {
            MalformedDataException e = assertThrows(MalformedDataException.class, it::hasNext);
            assertTrue(e.getMessage().contains("l.csv:1") && e.getMessage().contains("label_shape (1,) needs 1"), e.getMessage());
        }
    }

    @Test
    void labelAndDataFilesMustHaveTheSameLength() throws IOException {
        Path data = write("d.csv", "1\n2\n3\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(data).setDataShape(1).optLabelCsv(write("short.csv", "1\n2\n")).setBatchSize(3).build()) {
            MalformedDataException e = assertThrows(MalformedDataException.class, it::hasNext);
            assertTrue(e.getMessage().contains("d.csv:3") && e.getMessage().contains("fewer rows"), e.getMessage());
        }
        try (CSVIter it = CSVIter.builder().setDataCsv(data).setDataShape(1).optLabelCsv(write("long.csv", "1\n2\n3\n4\n")).setBatchSize(3)
                .build()) {
            it.next().close();
            MalformedDataException e = assertThrows(MalformedDataException.class, it::hasNext);
            assertTrue(e.getMessage().contains("long.csv:4") && e.getMessage().contains("more rows"), e.getMessage());
        }
    }

    @Test
    void missingFilesFailAtBuild() {
        IOException e = assertThrows(IOException.class,
                () -> CSVIter.builder().setDataCsv(dir.resolve("nope.csv")).setDataShape(1).setBatchSize(1).build());
        assertTrue(e.getMessage().contains("nope.csv"), e.getMessage());
        assertThrows(NullPointerException.class, () -> CSVIter.builder().setDataShape(1).setBatchSize(1).build());
        IllegalArgumentException bs = assertThrows(IllegalArgumentException.class,
                () -> CSVIter.builder().setDataCsv(dir).setDataShape(1).build());
        assertTrue(bs.getMessage().contains("batch_size"), bs.getMessage());
    }

    @Test
    void directoriesGzipHeadersAndTrailingCommas() throws IOException {
        Path d = Files.createDirectories(dir.resolve("parts"));
        Files.writeString(d.resolve("b.csv"), "3,30,\n4,40\n");
        Files.writeString(d.resolve("a.csv"), "1,10\r\n2,20\r\n");
        Files.writeString(d.resolve(".hidden"), "garbage\n");
        try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(d.resolve("c.csv.gz")))) {
            o.write("5,50\n".getBytes(StandardCharsets.US_ASCII));
        }
        try (CSVIter it = CSVIter.builder().setDataCsv(d).setDataShape(2).setBatchSize(5).build()) {
            List<B> ep = epoch(it);
            assertEquals(1, ep.size());
            assertArrayEquals(d(1, 10, 2, 20, 3, 30, 4, 40, 5, 50), ep.get(0).data(), "files in name order");
        }
        Path h = write("h.csv", "x,y\n1,10\n2,20\n");
        Path hl = write("hl.csv", "label\n7\n8\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(h).setDataShape(2).optLabelCsv(hl).optSkipLines(1).setBatchSize(2).build();
             DataBatch b = it.next()) {
            assertArrayEquals(new float[] {1, 10, 2, 20}, b.data().get(0).toFloatArray());
            assertArrayEquals(new float[] {7, 8}, b.label().get(0).toFloatArray());
        }
        Path sp = write("sp.txt", "1  10\n 2\t20 \n");
        try (CSVIter it = CSVIter.builder().setDataCsv(sp).setDataShape(2).optDelimiter(' ').setBatchSize(2).build(); DataBatch b = it.next()) {
            assertArrayEquals(new float[] {1, 10, 2, 20}, b.data().get(0).toFloatArray());
        }
    }

    @Test
    void batchLargerThanTheDataWrapsAgain() throws IOException {
        // MXNet: 5 rows, batch 7 -> [1..5,1,2] pad 2, then [3,4,5,1,2,3,4] pad 4 (checked in MxIterOracleTest)
        Path data = write("d.csv", "1\n2\n3\n4\n5\n");
        try (CSVIter it = CSVIter.builder().setDataCsv(data).setDataShape(1).setBatchSize(7).build()) {
            List<B> e0 = epoch(it);
            assertArrayEquals(d(1, 2, 3, 4, 5, 1, 2), e0.get(0).data());
            assertEquals(2, e0.get(0).pad());
            it.reset();
            List<B> e1 = epoch(it);
            assertArrayEquals(d(3, 4, 5, 1, 2, 3, 4), e1.get(0).data());
            assertEquals(4, e1.get(0).pad());
        }
        // batch 12 > 2 x 5 rows: MXNet stops with an error; Kiln keeps wrapping
        try (CSVIter it = CSVIter.builder().setDataCsv(data).setDataShape(1).setBatchSize(12).build(); DataBatch b = it.next()) {
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2}, b.data().get(0).toFloatArray());
            assertEquals(7, b.pad());
            assertFalse(it.hasNext());
        }
    }

    @Test
    void closedIteratorRefusesUse() throws IOException {
        CSVIter it = fiveRows(true);
        it.close();
        it.close();
        assertThrows(IllegalStateException.class, it::hasNext);
        assertThrows(IllegalStateException.class, it::reset);
    }

    // the real scikit-learn iris split (shared/data/sklearn/csviter) against the original table read with Csv
    @Test
    void readsTheSklearnIrisSplit() throws IOException {
        Path root = sklearn();
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isDirectory(root), "no shared/data/sklearn");
        Csv.Table table = Csv.read(root.resolve("iris.csv"), ',', 1);
        assertEquals(150, table.rows());
        try (CSVIter it = CSVIter.builder().setDataCsv(root.resolve("csviter/iris.data.csv")).setDataShape(4)
                .optLabelCsv(root.resolve("csviter/iris.label.csv")).setBatchSize(30).build()) {
            List<B> ep = epoch(it);
            assertEquals(5, ep.size());
            int[] counts = new int[3];
            for (int k = 0; k < 5; k++) {
                for (int i = 0; i < 30; i++) {
                    int row = 30 * k + i;
                    for (int c = 0; c < 4; c++) {
                        assertEquals(table.get(row, c), (float) ep.get(k).data()[4 * i + c], "row " + row);
                    }
                    assertEquals(table.get(row, 4), (float) ep.get(k).label()[i]);
                    counts[(int) ep.get(k).label()[i]]++;
                }
                assertEquals(0, ep.get(k).pad());
            }
            assertArrayEquals(new int[] {50, 50, 50}, counts);
        }
        // linnerud: 3 targets per row
        try (CSVIter it = CSVIter.builder().setDataCsv(root.resolve("csviter/linnerud.data.csv")).setDataShape(3)
                .optLabelCsv(root.resolve("csviter/linnerud.label.csv")).optLabelShape(3).setBatchSize(8).build()) {
            List<B> ep = epoch(it);
            assertEquals(3, ep.size());
            assertArrayEquals(new long[] {8, 3}, ep.get(0).labelShape());
            assertArrayEquals(d(191, 36, 50), Arrays.copyOf(ep.get(0).label(), 3));
            assertEquals(4, ep.get(2).pad(), "20 rows, batch 8: the last batch wraps 4 rows");
        }
    }
}
