package dev.kiln.symbol;

import dev.kiln.internal.Json;
import dev.kiln.op.Ops;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.function.Supplier;

/**
 * A Java stand-in for the native operator registry, describing a handful of MXNet operators
 * (inputs, outputs, visible outputs, mutated inputs) exactly as MXNet 1.x declares them, so that
 * symbol composition and JSON tests run without the native library. Installed into {@link Ops}
 * by reflection ({@code Ops.setSourcesForTesting}); {@link #uninstall()} restores the native
 * source.
 */
final class FakeOpRegistry {
    private FakeOpRegistry() {}

    /** Registered names; a name outside this set is "not supported". */
    static final Set<String> OPS = Set.of("FullyConnected", "Activation", "SoftmaxOutput", "Softmax",
            "LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput", "BatchNorm", "Convolution",
            "Pooling", "Flatten", "flatten", "Dropout", "Concat", "concat", "elemwise_add", "_Plus", "elemwise_sub",
            "elemwise_mul", "elemwise_div", "_power", "SliceChannel", "split", "LeakyReLU", "_plus_scalar",
            "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar", "_rdiv_scalar", "_power_scalar",
            "_rpower_scalar", "ElementWiseSum", "add_n", "argmax", "softmax", "log_softmax", "Reshape", "BlockGrad",
            "identity", "sum", "mean", "max", "min", "clip", "transpose", "expand_dims", "dot", "MakeLoss",
            "negative", "exp", "log", "sqrt", "square", "abs", "broadcast_add", "broadcast_mul", "_maximum",
            "_minimum", "SoftmaxActivation");

    static void install() {
        set(FakeOpRegistry::info, () -> Json.write(new ArrayList<>(OPS)));
    }

    static void uninstall() {
        set(null, null);
    }

    private static void set(BiFunction<String, String, String> info, Supplier<String> list) {
        try {
            Method m = Ops.class.getDeclaredMethod("setSourcesForTesting", BiFunction.class, Supplier.class);
            m.setAccessible(true);
            m.invoke(null, info, list);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError("cannot install the fake op registry", e);
        }
    }

    private static Map<String, Object> op(String name, List<String> inputs, List<String> outputs, int visible,
            List<Integer> mutate) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", name);
        m.put("inputs", inputs);
        m.put("outputs", outputs);
        m.put("visible_outputs", visible);
        m.put("mutate", mutate);
        m.put("params", List.of());
        m.put("backward", false);
        m.put("differentiable", true);
        m.put("gpu", false);
        return m;
    }

    private static boolean isTrue(String v) {
        return v != null && (v.equals("True") || v.equals("true") || v.equals("1"));
    }

    static String info(String op, String attrsJson) {
        Map<String, Object> a = Json.asObject(Json.parse(attrsJson), "attrs");
        for (String k : a.keySet()) {
            if (k.startsWith("__")) {
                throw new AssertionError("Ops must not pass hidden attributes to the registry: " + k);
            }
        }
        String noBias = (String) a.get("no_bias");
        List<String> dwb = isTrue(noBias) ? List.of("data", "weight") : List.of("data", "weight", "bias");
        List<String> out = List.of("output");
        List<String> data = List.of("data");
        List<String> lr = List.of("lhs", "rhs");
        Map<String, Object> m;
        switch (op) {
            case "FullyConnected":
            case "Convolution":
                if (!a.containsKey("num_hidden") && !a.containsKey("num_filter")) {
                    throw new dev.kiln.engine.KilnException("op " + op + ": " + op + ": required parameter "
                            + (op.equals("Convolution") ? "num_filter" : "num_hidden") + " is missing");
                }
                if (a.containsKey("bogus")) {
                    throw new dev.kiln.engine.KilnException("op " + op + ": unknown parameter 'bogus'");
                }
                m = op(op, dwb, out, 1, List.of());
                break;
            case "SoftmaxOutput":
            case "Softmax":
                m = op("SoftmaxOutput", List.of("data", "label"), out, 1, List.of());
                break;
            case "LinearRegressionOutput":
            case "LogisticRegressionOutput":
            case "MAERegressionOutput":
                m = op(op, List.of("data", "label"), out, 1, List.of());
                break;
            case "BatchNorm":
                m = op(op, List.of("data", "gamma", "beta", "moving_mean", "moving_var"), List.of("output", "mean", "var"),
                        isTrue((String) a.get("output_mean_var")) ? 3 : 1, List.of(3, 4));
                break;
            case "Dropout":
                m = op(op, data, List.of("output", "mask"), 1, List.of());
                break;
            case "Concat":
            case "concat":
            case "ElementWiseSum":
            case "add_n": {
                int n = Integer.parseInt((String) a.get("num_args"));
                List<String> ins = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    ins.add("arg" + i);
                }
                m = op(op.equals("concat") ? "Concat" : op.equals("ElementWiseSum") ? "add_n" : op, ins, out, 1, List.of());
                break;
            }
            case "SliceChannel":
            case "split": {
                int n = Integer.parseInt((String) a.get("num_outputs"));
                List<String> outs = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    outs.add("output" + i);
                }
                m = op("SliceChannel", data, outs, n, List.of());
                break;
            }
            case "LeakyReLU":
                m = op(op, "prelu".equals(a.get("act_type")) ? List.of("data", "gamma") : data, out, 1, List.of());
                break;
            case "elemwise_add":
            case "_Plus":
                m = op("elemwise_add", lr, out, 1, List.of());
                break;
            case "elemwise_sub":
            case "elemwise_mul":
            case "elemwise_div":
            case "_power":
            case "dot":
            case "broadcast_add":
            case "broadcast_mul":
            case "_maximum":
            case "_minimum":
                m = op(op, lr, out, 1, List.of());
                break;
            case "flatten":
                m = op("Flatten", data, out, 1, List.of());
                break;
            default:
                if (!OPS.contains(op)) {
                    throw new dev.kiln.engine.KilnException("op " + op + ": operator " + op + " is not supported");
                }
                m = op(op, data, out, 1, List.of());
        }
        return Json.write(m);
    }
}
