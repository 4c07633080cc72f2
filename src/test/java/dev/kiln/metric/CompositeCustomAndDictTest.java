package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CompositeEvalMetric, CustomMetric, updateDict name selection, HostTensor and the printed form. */
@ExtendWith(NoLeaks.class)
class CompositeCustomAndDictTest {
    static NDArray nd(float[] data, long... shape) {
        return NDArray.create(data, shape);
    }

    /** A named Feval class: CustomMetric uses its simple name, as MXNet uses a function's __name__. */
    static final class MeanAbs implements CustomMetric.Feval {
        @Override
        public double apply(HostTensor label, HostTensor pred) {
            double s = 0;
            for (int i = 0; i < label.size(); i++) {
                s += Math.abs(label.get(i) - pred.get(i));
            }
            return s / label.size();
        }
    }

    @Test
    void customScalarAndSumNumFunctions() {
        List<long[]> shapesSeen = new ArrayList<>();
        CustomMetric scalar = new CustomMetric(new MeanAbs());
        assertEquals("MeanAbs", scalar.name());
        CustomMetric pairs = CustomMetric.ofSumNum("hits", (label, pred) -> {
            shapesSeen.add(pred.shape());
            int hits = 0;
            for (int i = 0; i < label.size(); i++) {
                hits += label.get(i) == pred.at(i, 0) ? 1 : 0;
            }
            return new CustomMetric.SumNum(hits, label.size());
        });
        try (NDScope s = NDScope.open()) {
            scalar.update(nd(new float[] {1, 2}, 2), nd(new float[] {0, 0}, 2));         // 1.5
            scalar.update(nd(new float[] {1}, 1), nd(new float[] {0.5f}, 1));           // 0.5
            pairs.update(List.of(nd(new float[] {1, 2, 3}, 3)), List.of(nd(new float[] {1, 0, 2, 0, 3, 0}, 3, 2)));
        }
        assertEquals(1.0, scalar.get(), 1e-12);
        assertEquals(2, scalar.numInst());
        assertEquals(3, pairs.numInst());
        assertEquals(1.0, pairs.get(), 0);
        assertArrayEquals(new long[] {3, 2}, shapesSeen.get(0));
    }

    @Test
    void customAllowExtraOutputs() {
        CustomMetric strict = CustomMetric.of("c", (l, p) -> p.get(0));
        CustomMetric extra = new CustomMetric((l, p) -> p.get(0), "c", true, null, null);
        try (NDScope s = NDScope.open()) {
            List<NDArray> labels = List.of(nd(new float[] {0}, 1));
            List<NDArray> preds = List.of(nd(new float[] {3}, 1), nd(new float[] {5}, 1));
            assertThrows(IllegalArgumentException.class, () -> strict.update(labels, preds));
            extra.update(labels, preds); // pairs up to the shorter list
        }
        assertEquals(3.0, extra.get(), 0);
        assertEquals(1, extra.numInst());
    }

    @Test
    void compositeFansOutAndConcatenates() {
        CompositeEvalMetric c = new CompositeEvalMetric();
        c.add("acc").add(new MSE()).add(List.of("mae", "loss"));
        try (NDScope s = NDScope.open()) {
            c.update(nd(new float[] {0, 1, 1}, 3), nd(GoldenVectorTest.PRED, 3, 2));
        }
        List<String> names = new ArrayList<>();
        c.getNameValue().forEach(e -> names.add(e.getKey()));
        assertEquals(List.of("accuracy", "mse", "mae", "loss"), names);
        assertEquals(0.35, c.getNameValue().get(1).getValue(), 1e-7);
        assertThrows(IllegalStateException.class, c::get);
        c.resetLocal();
        assertTrue(Double.isNaN(c.getNameValue().get(0).getValue()));
        assertEquals(2 / 3.0, c.getGlobalNameValue().get(0).getValue(), 1e-15);
        c.reset();
        assertTrue(Double.isNaN(c.getGlobalNameValue().get(3).getValue()));
        assertThrows(IllegalArgumentException.class, () -> c.getMetric(4));
        CompositeEvalMetric one = (CompositeEvalMetric) Metrics.create(List.of("acc"));
        assertTrue(Double.isNaN(one.get()));
    }

    @Test
    void updateDictSelectsByNames() {
        try (NDScope s = NDScope.open()) {
            Map<String, NDArray> labels = new LinkedHashMap<>();
            labels.put("softmax_label", nd(new float[] {0, 1, 1}, 3));
            labels.put("other_label", nd(new float[] {1, 1, 1}, 3));
            Map<String, NDArray> preds = new LinkedHashMap<>();
            preds.put("softmax_output", nd(GoldenVectorTest.PRED, 3, 2));
            preds.put("aux_output", nd(new float[] {9, 9, 9}, 3));

            // no names: all values in order -> 2 labels, 2 outputs, paired by position
            Accuracy all = new Accuracy();
            all.updateDict(labels, preds);
            assertEquals(6, all.numInst());

            Accuracy sel = new Accuracy(1, "accuracy", List.of("softmax_output"), List.of("softmax_label"));
            sel.updateDict(labels, preds);
            assertEquals(2 / 3.0, sel.get(), 1e-15);

            Accuracy other = new Accuracy(1, "accuracy", List.of("softmax_output"), List.of("other_label"));
            other.updateDict(labels, preds);
            assertEquals(1.0, other.get(), 0);

            Accuracy missing = new Accuracy(1, "accuracy", List.of("nope"), null);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> missing.updateDict(labels, preds));
            assertTrue(e.getMessage().contains("'nope'"), e.getMessage());

            // one label, two outputs without selection: MXNet's ValueError
            Map<String, NDArray> oneLabel = Map.of("softmax_label", labels.get("softmax_label"));
            assertThrows(IllegalArgumentException.class, () -> new Accuracy().updateDict(oneLabel, preds));

            // a composite filters by its own names first, then each child selects
            CompositeEvalMetric comp = new CompositeEvalMetric(List.of("acc", new Loss("aux", List.of("aux_output"), null)),
                    "composite", List.of("softmax_output", "aux_output"), List.of("softmax_label"));
            assertThrows(IllegalArgumentException.class, () -> comp.updateDict(labels, preds)); // acc: 1 label vs 2 outputs
            CompositeEvalMetric comp2 = new CompositeEvalMetric(List.of("acc"), "composite", List.of("softmax_output"), List.of("softmax_label"));
            comp2.updateDict(labels, preds);
            assertEquals(2 / 3.0, comp2.get(), 1e-15);
            CompositeEvalMetric comp3 = new CompositeEvalMetric(List.of(new Loss("aux", List.of("aux_output"), null)), "composite", null, null);
            comp3.updateDict(labels, preds);
            assertEquals(9.0, comp3.get(), 0);
        }
    }

    @Test
    void hostTensorIsACopy() {
        HostTensor t;
        try (NDScope s = NDScope.open()) {
            t = HostTensor.of(nd(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
        }
        assertEquals(6.0, t.at(1, 2), 0);
        assertEquals(3, t.dim(-1));
        assertEquals(2, t.ndim());
        double[] copy = t.toArray();
        copy[0] = 42;
        assertEquals(1.0, t.get(0), 0);
        long[] shape = t.shape();
        shape[0] = 7;
        assertArrayEquals(new long[] {2, 3}, t.shape());
        assertEquals(21.0, t.stream().sum(), 0);
        assertThrows(IllegalArgumentException.class, () -> t.at(2, 0));
        assertThrows(IllegalArgumentException.class, () -> HostTensor.of(new double[3], 2, 2));
        assertEquals("HostTensor(2, 3)[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]", t.toString());
    }

    @Test
    void pythonFloatRepr() {
        assertEquals("0.6666666666666666", PyRepr.ofDouble(2 / 3.0));
        assertEquals("2.0", PyRepr.ofDouble(2));
        assertEquals("0.0001", PyRepr.ofDouble(1e-4));
        assertEquals("1e-05", PyRepr.ofDouble(1e-5));
        assertEquals("1.5e-07", PyRepr.ofDouble(1.5e-7));
        assertEquals("1234567890123456.0", PyRepr.ofDouble(1234567890123456.0));
        assertEquals("1e+16", PyRepr.ofDouble(1e16));
        assertEquals("-12.5", PyRepr.ofDouble(-12.5));
        assertEquals("nan", PyRepr.ofDouble(Double.NaN));
        assertEquals("-inf", PyRepr.ofDouble(Double.NEGATIVE_INFINITY));
        assertEquals("100.0", PyRepr.ofDouble(100));
    }
}
