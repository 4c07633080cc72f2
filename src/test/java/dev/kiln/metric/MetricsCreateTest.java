package dev.kiln.metric;

import dev.kiln.internal.Json;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The registry, every form of Metrics.create, getConfig round trips and argument errors. */
@ExtendWith(NoLeaks.class)
class MetricsCreateTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource({
        "accuracy, Accuracy, accuracy", "acc, Accuracy, accuracy", "ACC, Accuracy, accuracy",
        "f1, F1, f1", "mcc, MCC, mcc", "mae, MAE, mae", "mse, MSE, mse", "rmse, RMSE, rmse",
        "crossentropy, CrossEntropy, cross-entropy", "ce, CrossEntropy, cross-entropy",
        "negativeloglikelihood, NegativeLogLikelihood, nll-loss", "nll_loss, NegativeLogLikelihood, nll-loss",
        "pearsoncorrelation, PearsonCorrelation, pearsonr", "pearsonr, PearsonCorrelation, pearsonr",
        "pcc, PCC, pcc", "loss, Loss, loss", "torch, Torch, torch", "caffe, Caffe, caffe",
        "compositeevalmetric, CompositeEvalMetric, composite", "composite, CompositeEvalMetric, composite",
    })
    void registeredNames(String name, String cls, String display) {
        EvalMetric m = Metrics.create(name);
        assertEquals(cls, m.getClass().getSimpleName());
        assertEquals(display, m.name());
    }

    @Test
    void registryListsMxnetNames() {
        assertTrue(Metrics.registeredNames().containsAll(List.of("accuracy", "acc", "topkaccuracy", "top_k_accuracy", "top_k_acc",
                "f1", "mcc", "perplexity", "mae", "mse", "rmse", "crossentropy", "ce", "negativeloglikelihood", "nll_loss",
                "pearsoncorrelation", "pearsonr", "pcc", "loss", "torch", "caffe", "custommetric", "compositeevalmetric", "composite")));
        assertEquals("top_k_accuracy_3", Metrics.create("TopKAccuracy", 3).name());
        assertEquals("perplexity", Metrics.create("perplexity", Map.of("ignore_label", -1)).name());
    }

    /** MXNet's check_metric: create, get_config, JSON, create from the text, same config. */
    private static EvalMetric roundTrip(Object spec, Object... args) {
        EvalMetric m = Metrics.create(spec, args);
        String json = Json.write(m.getConfig());
        EvalMetric m2 = Metrics.create(json);
        assertEquals(m.getConfig(), m2.getConfig(), json);
        assertEquals(m.getClass(), m2.getClass());
        assertEquals(m.name(), m2.name());
        return m2;
    }

    @Test
    void configRoundTrips() {
        // test_metrics
        assertEquals(0, ((Accuracy) roundTrip("acc", Map.of("axis", 0))).axis());
        roundTrip("f1");
        roundTrip("mcc");
        assertEquals(-1L, ((Perplexity) roundTrip("perplexity", -1)).ignoreLabel());
        roundTrip("pearsonr");
        roundTrip("pcc");
        roundTrip("nll_loss");
        roundTrip("loss");
        roundTrip(Metrics.create(List.of("acc", "f1")));
        // beyond MXNet: every other metric, and the arguments MXNet loses
        assertEquals("micro", ((F1) roundTrip("f1", Map.of("average", "micro"))).average());
        assertEquals("micro", ((MCC) roundTrip("mcc", Map.of("average", "micro"))).average());
        assertEquals("micro", ((PearsonCorrelation) roundTrip("pearsonr", Map.of("average", "micro"))).average());
        assertEquals("top_k_accuracy_5", roundTrip("top_k_accuracy", 5).name());
        assertEquals(1e-7, ((CrossEntropy) roundTrip("ce", 1e-7)).eps());
        assertEquals(0, ((Perplexity) roundTrip("perplexity", null, 0)).axis());
        roundTrip("mae", "my-mae", List.of("out"), List.of("lab"));
        roundTrip("mse");
        roundTrip("rmse");
        roundTrip("torch");
        roundTrip("caffe");
    }

    @Test
    void configContentsFollowMxnet() {
        Map<String, Object> c = Metrics.create("acc", Map.of("axis", 0, "output_names", List.of("softmax_output"))).getConfig();
        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("axis", 0);
        expected.put("metric", "Accuracy");
        expected.put("name", "accuracy");
        expected.put("output_names", List.of("softmax_output"));
        expected.put("label_names", null);
        assertEquals(expected, c);
        assertEquals("{\"axis\":0,\"metric\":\"Accuracy\",\"name\":\"accuracy\",\"output_names\":[\"softmax_output\"],\"label_names\":null}",
                Json.write(c));
        Map<String, Object> comp = Metrics.create(List.of("acc", "ce")).getConfig();
        assertEquals("CompositeEvalMetric", comp.get("metric"));
        assertEquals(2, ((List<?>) comp.get("metrics")).size());
    }

    @Test
    void allCreateForms() {
        Accuracy acc = new Accuracy();
        assertSame(acc, Metrics.create(acc));
        CompositeEvalMetric c = assertInstanceOf(CompositeEvalMetric.class, Metrics.create(List.of("acc", new F1(), List.of("mse"))));
        assertEquals(3, c.metrics().size());
        assertInstanceOf(CompositeEvalMetric.class, c.getMetric(2));
        // list children share the args
        CompositeEvalMetric named = (CompositeEvalMetric) Metrics.create(List.of("mae", "mse"), "same-name");
        assertEquals("same-name", named.getMetric(0).name());
        assertEquals("same-name", named.getMetric(1).name());
        // map with "metric"
        F1 f = (F1) Metrics.create(Map.of("metric", "f1", "average", "micro", "name", "f1m"));
        assertEquals("micro", f.average());
        assertEquals("f1m", f.name());
        // JSON array and object
        assertEquals(0, ((Accuracy) Metrics.create("[\"acc\", {\"axis\": 0}]")).axis());
        assertEquals(4, ((TopKAccuracy) Metrics.create("{\"metric\": \"top_k_acc\", \"top_k\": 4}")).topK());
        // a function
        EvalMetric custom = Metrics.create((label, pred) -> 1.0);
        assertInstanceOf(CustomMetric.class, custom);
        assertEquals("custom(<lambda>)", custom.name());
        assertEquals("named", Metrics.create((CustomMetric.Feval) (l, p) -> 1.0, "named").name());
        assertEquals("kw", Metrics.create((CustomMetric.Feval) (l, p) -> 1.0, Map.of("name", "kw")).name());
        CustomMetric.SumNumFeval sn = (l, p) -> new CustomMetric.SumNum(1, 2);
        assertInstanceOf(CustomMetric.class, Metrics.create(sn));
        assertInstanceOf(CustomMetric.class, Metrics.create("custommetric", sn, "cm"));
        // positional and keyword arguments mixed, output/label names
        EvalMetric ce = Metrics.create("ce", 1e-5, Map.of("output_names", List.of("o"), "label_names", List.of("l")));
        assertEquals(List.of("o"), ce.outputNames());
        assertEquals(List.of("l"), ce.labelNames());
        assertNull(Metrics.create("ce").outputNames());
        // a bare null argument is Python's None
        assertNull(((Perplexity) Metrics.create("perplexity", (Object[]) null)).ignoreLabel());
        assertThrows(IllegalArgumentException.class, () -> Metrics.create("perplexity", Map.of()));
    }

    @Test
    void registerAddsNames() {
        Metrics.register((a, k) -> new MAE("half-mae", null, null), "HalfMae");
        assertEquals("half-mae", Metrics.create("halfmae").name());
        assertEquals("half-mae", Metrics.create("HALFMAE").name());
    }

    @Test
    void createErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Metrics.create("foo"));
        assertTrue(e.getMessage().contains("'foo' is not registered"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Metrics.create(new Accuracy(), 1));
        assertTrue(e.getMessage().contains("already an instance"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Metrics.create("acc", Map.of("axes", 1)));
        assertTrue(e.getMessage().contains("unexpected keyword argument 'axes'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Metrics.create("acc", 1, Map.of("axis", 1)));
        assertTrue(e.getMessage().contains("multiple values for argument 'axis'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Metrics.create("acc", 1, "n", null, null, "extra"));
        e = assertThrows(IllegalArgumentException.class, () -> Metrics.create("acc", "one"));
        assertTrue(e.getMessage().contains("'axis' must be an integer"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Metrics.create(Map.of("name", "x")));
        assertThrows(IllegalArgumentException.class, () -> Metrics.create("[\"acc\"]"));
        assertThrows(IllegalArgumentException.class, () -> Metrics.create("{not json"));
        assertThrows(IllegalArgumentException.class, () -> Metrics.create(42));
        assertThrows(IllegalArgumentException.class, () -> Metrics.create("f1", Map.of("average", "weighted")));
        assertThrows(IllegalArgumentException.class, () -> Metrics.create("custommetric", "not a function"));
        assertThrows(IllegalArgumentException.class, () -> Metrics.create("perplexity"));
        assertThrows(IllegalArgumentException.class, () -> Metrics.create("top_k_accuracy", 1));
    }

    @Test
    void customMetricCannotBeSerialised() {
        assertThrows(UnsupportedOperationException.class, () -> CustomMetric.of("c", (l, p) -> 0).getConfig());
        EvalMetric comp = Metrics.create(List.of("acc", (CustomMetric.Feval) (l, p) -> 0));
        assertThrows(UnsupportedOperationException.class, comp::getConfig);
    }

    @Test
    void updateThroughCreatedMetricsLeavesNoArrays() {
        EvalMetric m = Metrics.create(List.of("acc", "ce", "mse"));
        try (NDScope s = NDScope.open()) {
            m.update(NDArray.create(new float[] {0, 1, 1}, 3), NDArray.create(GoldenVectorTest.PRED, 3, 2));
        }
        assertEquals(3, m.getNameValue().size());
    }
}
