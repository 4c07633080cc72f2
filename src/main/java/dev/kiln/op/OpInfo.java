package dev.kiln.op;

import dev.kiln.internal.Json;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What the native registry says about one operator for one set of attributes: its canonical
 * MXNet name, input and output names (which can depend on attributes, e.g. {@code no_bias} or
 * {@code num_args}), how many outputs are visible, which inputs it mutates (auxiliary states),
 * its parameters and capabilities. Obtained from {@link Ops#info(String, Map)}.
 *
 * <p>Thread-safety: immutable; safe to share between threads.
 */
public final class OpInfo {
    /**
     * One declared operator parameter.
     *
     * <p>Thread-safety: immutable.
     */
    public static final class Param {
        private final String name;
        private final String type;
        private final String defaultValue;
        private final String description;
        private final List<String> choices;

        /**
         * Creates a parameter description.
         *
         * @param name MXNet parameter name, e.g. {@code num_hidden}
         * @param type type name as the registry reports it ({@code int}, {@code float}, {@code bool},
         *     {@code enum}, {@code shape}, {@code string})
         * @param defaultValue default as MXNet prints it; {@code ""} for a required parameter, {@code
         *     "None"} for an optional parameter without value
         * @param description one-line description
         * @param choices allowed values of an enum parameter (empty otherwise)
         */
        public Param(String name, String type, String defaultValue, String description, List<String> choices) {
            this.name = Objects.requireNonNull(name, "name");
            this.type = type == null ? "" : type;
            this.defaultValue = defaultValue == null ? "" : defaultValue;
            this.description = description == null ? "" : description;
            this.choices = choices == null ? List.of() : List.copyOf(choices);
        }

        /** @return the MXNet parameter name */
        public String name() {
            return name;
        }

        /** @return the type name reported by the registry */
        public String type() {
            return type;
        }

        /** @return the default as MXNet prints it ({@code ""} when required) */
        public String defaultValue() {
            return defaultValue;
        }

        /** @return the description */
        public String description() {
            return description;
        }

        /** @return allowed values for enum parameters, else empty (unmodifiable) */
        public List<String> choices() {
            return choices;
        }

        /** @return true when the parameter has no default and must be given */
        public boolean isRequired() {
            return defaultValue.isEmpty();
        }

        @Override
        public String toString() {
            return name + ":" + type + (isRequired() ? " (required)" : "=" + defaultValue);
        }
    }

    private final String name;
    private final List<String> inputs;
    private final List<String> outputs;
    private final int visibleOutputs;
    private final List<Integer> mutateInputs;
    private final List<Param> params;
    private final boolean backward;
    private final boolean differentiable;
    private final boolean gpu;
    private final boolean loss;
    private final List<String> aliases;
    private final String description;

    /**
     * Creates an operator description. Normally obtained from {@link Ops#info(String, Map)}.
     *
     * @param name canonical op name
     * @param inputs input names in order
     * @param outputs all output names, hidden ones included
     * @param visibleOutputs number of leading outputs visible to users
     * @param mutateInputs indices of inputs the op mutates (aux states)
     * @param params declared parameters
     * @param backward whether this is a {@code _backward_X} op
     * @param differentiable whether the op has a gradient rule
     * @param gpu whether a GPU kernel is registered
     */
    public OpInfo(String name, List<String> inputs, List<String> outputs, int visibleOutputs,
            List<Integer> mutateInputs, List<Param> params, boolean backward, boolean differentiable, boolean gpu) {
        this(name, inputs, outputs, visibleOutputs, mutateInputs, params, backward, differentiable, gpu, false,
                List.of(), "");
    }

    /**
     * Creates an operator description with the optional registry fields.
     *
     * @param name canonical op name
     * @param inputs input names in order
     * @param outputs all output names, hidden ones included
     * @param visibleOutputs number of leading outputs visible to users
     * @param mutateInputs indices of inputs the op mutates (aux states)
     * @param params declared parameters
     * @param backward whether this is a {@code _backward_X} op
     * @param differentiable whether the op has a gradient rule
     * @param gpu whether a GPU kernel is registered
     * @param loss whether the op is a loss head whose gradient ignores the head gradient
     * @param aliases other names of the op
     * @param description one-paragraph description
     */
    public OpInfo(String name, List<String> inputs, List<String> outputs, int visibleOutputs,
            List<Integer> mutateInputs, List<Param> params, boolean backward, boolean differentiable, boolean gpu,
            boolean loss, List<String> aliases, String description) {
        this.name = Objects.requireNonNull(name, "name");
        this.inputs = List.copyOf(inputs);
        this.outputs = List.copyOf(outputs);
        if (visibleOutputs < 0 || visibleOutputs > this.outputs.size()) {
            throw new IllegalArgumentException("op " + name + ": visible_outputs " + visibleOutputs
                    + " out of range for " + this.outputs.size() + " outputs");
        }
        this.visibleOutputs = visibleOutputs;
        for (Integer m : mutateInputs) {
            if (m == null || m < 0 || m >= this.inputs.size()) {
                throw new IllegalArgumentException("op " + name + ": mutated input index " + m
                        + " out of range for inputs " + this.inputs);
            }
        }
        this.mutateInputs = List.copyOf(mutateInputs);
        this.params = List.copyOf(params);
        this.backward = backward;
        this.differentiable = differentiable;
        this.gpu = gpu;
        this.loss = loss;
        this.aliases = aliases == null ? List.of() : List.copyOf(aliases);
        this.description = description == null ? "" : description;
    }

    /**
     * Parses the registry's JSON answer (see {@code kiln_op_info} in {@code c_api.h}).
     *
     * @param json the JSON text
     * @return the parsed description
     * @throws IllegalArgumentException if the JSON is malformed or lacks {@code name}/{@code inputs}/{@code outputs}
     */
    public static OpInfo fromJson(String json) {
        Map<String, Object> o = Json.asObject(Json.parse(json), "op info");
        String name = Json.asString(o.get("name"), "op info.name");
        List<String> inputs = strings(o.get("inputs"), "op info " + name + ".inputs");
        List<String> outputs = strings(o.get("outputs"), "op info " + name + ".outputs");
        int visible = o.containsKey("visible_outputs") && o.get("visible_outputs") != null
                ? (int) Json.asLong(o.get("visible_outputs"), "op info " + name + ".visible_outputs")
                : outputs.size();
        List<Integer> mutate = new ArrayList<>();
        if (o.get("mutate") != null) {
            for (Object m : Json.asArray(o.get("mutate"), "op info " + name + ".mutate")) {
                mutate.add((int) Json.asLong(m, "op info " + name + ".mutate"));
            }
        }
        List<Param> params = new ArrayList<>();
        if (o.get("params") != null) {
            for (Object p : Json.asArray(o.get("params"), "op info " + name + ".params")) {
                Map<String, Object> pm = Json.asObject(p, "op info " + name + ".params[]");
                Object choices = pm.containsKey("choices") ? pm.get("choices") : pm.get(" choices");
                params.add(new Param(
                        Json.asString(pm.get("name"), "op info " + name + ".params[].name"),
                        optString(pm.get("type")),
                        optString(pm.get("default")),
                        optString(pm.get("description")),
                        choices == null ? List.of() : strings(choices, "op info " + name + ".params[].choices")));
            }
        }
        return new OpInfo(name, inputs, outputs, visible, mutate, params,
                optBool(o.get("backward"), false), optBool(o.get("differentiable"), true), optBool(o.get("gpu"), false),
                optBool(o.get("loss"), false),
                o.get("aliases") == null ? List.of() : strings(o.get("aliases"), "op info " + name + ".aliases"),
                optString(o.get("description")));
    }

    private static List<String> strings(Object v, String what) {
        List<String> out = new ArrayList<>();
        for (Object s : Json.asArray(v, what)) {
            out.add(Json.asString(s, what));
        }
        return out;
    }

    private static String optString(Object v) {
        return v == null ? "" : v.toString();
    }

    private static boolean optBool(Object v, boolean dflt) {
        return v instanceof Boolean ? (Boolean) v : dflt;
    }

    /** @return the canonical operator name (aliases resolve to it), as written to symbol JSON */
    public String name() {
        return name;
    }

    /** @return input names in order, e.g. {@code [data, weight, bias]} (unmodifiable) */
    public List<String> inputs() {
        return inputs;
    }

    /** @return all output names including hidden ones, e.g. {@code [output]} (unmodifiable) */
    public List<String> outputs() {
        return outputs;
    }

    /** @return the total number of outputs, hidden ones included */
    public int numOutputs() {
        return outputs.size();
    }

    /** @return the number of leading outputs a composed symbol exposes */
    public int numVisibleOutputs() {
        return visibleOutputs;
    }

    /** @return indices of inputs this op mutates (auxiliary states), e.g. {@code [3, 4]} for BatchNorm */
    public List<Integer> mutateInputs() {
        return mutateInputs;
    }

    /** @return declared parameters (unmodifiable) */
    public List<Param> params() {
        return params;
    }

    /**
     * Finds a declared parameter.
     *
     * @param paramName the MXNet parameter name
     * @return the parameter, or null when the op does not declare it
     */
    public Param param(String paramName) {
        for (Param p : params) {
            if (p.name.equals(paramName)) {
                return p;
            }
        }
        return null;
    }

    /** @return true for {@code _backward_X} ops created by gradient rules */
    public boolean isBackward() {
        return backward;
    }

    /** @return true when the op has a gradient rule (false: declared non-differentiable) */
    public boolean isDifferentiable() {
        return differentiable;
    }

    /** @return true when a GPU kernel is registered */
    public boolean supportsGpu() {
        return gpu;
    }

    /** @return true for loss heads (SoftmaxOutput, ...) whose gradient does not read the head gradient */
    public boolean isLoss() {
        return loss;
    }

    /** @return other registered names of this op (unmodifiable) */
    public List<String> aliases() {
        return aliases;
    }

    /** @return the registry's description ({@code ""} if none) */
    public String description() {
        return description;
    }

    @Override
    public String toString() {
        return "OpInfo{" + name + ", inputs=" + inputs + ", outputs=" + outputs + ", visible=" + visibleOutputs
                + (mutateInputs.isEmpty() ? "" : ", mutate=" + mutateInputs) + "}";
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof OpInfo)) {
            return false;
        }
        OpInfo t = (OpInfo) o;
        return name.equals(t.name) && inputs.equals(t.inputs) && outputs.equals(t.outputs)
                && visibleOutputs == t.visibleOutputs && mutateInputs.equals(t.mutateInputs)
                && backward == t.backward && differentiable == t.differentiable && gpu == t.gpu;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, inputs, outputs, visibleOutputs, mutateInputs);
    }
}
