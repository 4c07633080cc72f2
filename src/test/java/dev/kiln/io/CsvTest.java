package dev.kiln.io;

import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(NoLeaks.class)
class CsvTest {
    @TempDir
    Path dir;

    static Path sklearn() {
        Path p = CSVIterTest.sklearn();
        Assumptions.assumeTrue(Files.isDirectory(p), "no shared/data/sklearn");
        return p;
    }

    @Test
    void readsIrisWithItsHeaderLine() throws IOException {
        Csv.Table t = Csv.read(sklearn().resolve("iris.csv"), ',', 1);
        assertEquals(150, t.rows());
        assertEquals(5, t.cols());
        assertEquals(List.of("150,4,setosa,versicolor,virginica"), t.headerLines());
        assertArrayEquals(new float[] {5.1f, 3.5f, 1.4f, 0.2f}, t.select(0, 1, 2, 3).toRows()[0]);
        float[] label = t.column(-1);
        int[] counts = new int[3];
        for (float l : label) {
            counts[(int) l]++;
        }
        assertArrayEquals(new int[] {50, 50, 50}, counts);
        assertEquals(t.columns(0, 4).values().length, 600);
    }

    @Test
    void readsSpaceSeparatedAndGzippedTables() throws IOException {
        Csv.Table ex = Csv.read(sklearn().resolve("linnerud_exercise.csv"), ' ', 1);
        assertEquals(List.of("Chins Situps Jumps"), ex.headerLines());
        assertEquals(20, ex.rows());
        assertArrayEquals(new float[] {5, 162, 60}, ex.toRows()[0]);
        Csv.Table dia = Csv.read(sklearn().resolve("diabetes_data_raw.csv.gz"), ' ', 0);
        assertEquals(442, dia.rows());
        assertEquals(10, dia.cols());
        assertArrayEquals(new float[] {59, 2, 32.1f, 101, 157, 93.2f, 38, 4, 4.8598f, 87}, dia.toRows()[0]);
        Csv.Table boston = Csv.read(sklearn().resolve("boston_house_prices.csv"), ',', 2);
        assertEquals(506, boston.rows());
        assertEquals(14, boston.cols());
        assertEquals(24f, boston.get(0, 13));
    }

    // the table with a header, split with Csv into CSVIter files, reads back exactly; NDArrayIter on the table agrees
    @Test
    void splitForCsvIterAndFeedNdarrayIter() throws IOException {
        Csv.Table wine = Csv.read(sklearn().resolve("wine_data.csv"), ',', 1);
        assertEquals(178, wine.rows());
        Path data = dir.resolve("wine.data.csv");
        Path label = dir.resolve("wine.label.csv");
        wine.columns(0, 13).write(data);
        wine.select(13).write(label);
        assertArrayEquals(wine.columns(0, 13).values(), Csv.read(data).values());
        assertEquals(new Csv.Table(178, 13, wine.columns(0, 13).values(), null), Csv.read(data));
        try (CSVIter csv = CSVIter.builder().setDataCsv(data).setDataShape(13).optLabelCsv(label).setBatchSize(16).build();
             NDArrayIter nd = NDArrayIter.builder().setData(wine.columns(0, 13).toRows()).optLabel(wine.column(13)).setBatchSize(16).build()) {
            var a = NDArrayIterTest.epoch(csv);
            var b = NDArrayIterTest.epoch(nd);
            assertEquals(12, a.size());
            assertEquals(a.size(), b.size());
            for (int i = 0; i < a.size(); i++) {
                assertArrayEquals(a.get(i).data(), b.get(i).data(), "batch " + i);
                assertArrayEquals(a.get(i).label(), b.get(i).label());
                assertEquals(a.get(i).pad(), b.get(i).pad(), "both wrap to the start to pad");
            }
        }
        try (NDArray arr = wine.toNDArray()) {
            assertArrayEquals(new long[] {178, 14}, arr.shape().dims());
            assertArrayEquals(wine.values(), arr.toFloatArray());
        }
    }

    @Test
    void raggedOrNonNumericTablesFailWithFileAndLine() throws IOException {
        Path p = dir.resolve("t.csv");
        Files.writeString(p, "1,2,3\n4,5,6\n7,8\n");
        MalformedDataException e = assertThrows(MalformedDataException.class, () -> Csv.read(p));
        assertTrue(e.getMessage().contains("t.csv:3") && e.getMessage().contains("row has 2 values") && e.getMessage().contains("first row has 3"),
                e.getMessage());
        Files.writeString(p, "sepal,petal\n1,2\n");
        e = assertThrows(MalformedDataException.class, () -> Csv.read(p));
        assertTrue(e.getMessage().contains("t.csv:1") && e.getMessage().contains("'sepal'"), e.getMessage());
        assertEquals(1, Csv.read(p, ',', 1).rows(), "skipping the header line works");
        Csv.Table t = Csv.read(p, ',', 1);
        assertThrows(IndexOutOfBoundsException.class, () -> t.column(2));
        assertThrows(IllegalArgumentException.class, () -> new Csv.Table(2, 2, new float[3], null));
    }

    @Test
    void writeKeepsNonIntegralValuesExactly() throws IOException {
        float[] v = {0.1f, -2.5e-8f, 123456789f, 3f, Float.MIN_VALUE, -0f};
        Csv.Table t = new Csv.Table(2, 3, v, null);
        Path p = dir.resolve("w.csv");
        t.write(p);
        assertArrayEquals(v, Csv.read(p).values());
    }
}
