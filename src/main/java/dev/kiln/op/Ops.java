package dev.kiln.op;

import dev.kiln.engine.KilnException;
import dev.kiln.internal.Json;
import dev.kiln.internal.KilnNative;
import dev.kiln.internal.Native;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BiFunction;
import java.util.function.Supplier;

/**
 * Java view of the native operator registry: which operators exist and, for a given set of
 * attributes, their inputs, outputs and mutated inputs ({@link OpInfo}).
 *
 * <p>Answers are cached per operator name and parameter attributes; hidden attributes (keys of
 * the form {@code __name__}, such as {@code __lr_mult__}) are not parameters and are ignored.
 *
 * <p>Thread-safety: all methods are safe to call from any thread (the cache is a {@link
 * ConcurrentHashMap}; the native registry is read-only after load).
 */
public final class Ops {
    /** Bound on cached answers; the cache is dropped when it grows past this (scalar ops with many values). */
    private static final int MAX_CACHE = 4096;

    private static final ConcurrentHashMap<Key, OpInfo> CACHE = new ConcurrentHashMap<>();

    /** Where answers come from: the native registry (replaceable only by tests, via reflection). */
    private static volatile BiFunction<String, String, String> infoSource = Ops::nativeInfo;
    private static volatile Supplier<String> listSource = Ops::nativeList;

    private static volatile Set<String> names;

    private Ops() {}

    private record Key(String op, Map<String, String> attrs) {}

    /**
     * Describes an operator called without parameters.
     *
     * @param op operator name or alias, e.g. {@code "Activation"}
     * @return the description
     * @throws KilnException "operator X is not supported" for an unknown op, or the registry's
     *     message when the op needs parameters to describe itself
     */
    public static OpInfo info(String op) {
        return info(op, Map.of());
    }

    /**
     * Describes an operator for the given attributes (a JSON-style string map as stored in
     * symbol files, e.g. {@code {"num_hidden": "128", "no_bias": "True"}}).
     *
     * @param op operator name or alias
     * @param attrs attribute strings; keys {@code __x__} are ignored; may be null
     * @return the description (cached)
     * @throws KilnException "operator X is not supported" for an unknown op, or the registry's
     *     message for invalid parameters (unknown key, bad value, missing required value)
     */
    public static OpInfo info(String op, Map<String, String> attrs) {
        if (op == null || op.isEmpty()) {
            throw new IllegalArgumentException("operator name is null or empty");
        }
        TreeMap<String, String> params = new TreeMap<>();
        if (attrs != null) {
            for (Map.Entry<String, String> e : attrs.entrySet()) {
                String k = e.getKey();
                if (k == null || e.getValue() == null) {
                    throw new IllegalArgumentException("op " + op + ": attribute " + k + " has a null key or value");
                }
                if (!isHiddenKey(k)) {
                    params.put(k, e.getValue());
                }
            }
        }
        Key key = new Key(op, Collections.unmodifiableMap(params));
        OpInfo cached = CACHE.get(key);
        if (cached != null) {
            return cached;
        }
        if (!isSupported(op)) {
            throw new KilnException("operator " + op + " is not supported");
        }
        String json = infoSource.apply(op, Json.write(params));
        OpInfo info;
        try {
            info = OpInfo.fromJson(json);
        } catch (IllegalArgumentException e) {
            throw new KilnException("op " + op + ": the registry returned an unreadable description: " + e.getMessage(), e);
        }
        if (CACHE.size() >= MAX_CACHE) {
            CACHE.clear();
        }
        CACHE.put(key, info);
        return info;
    }

    /** Ops whose {@code num_args} defaults to the number of inputs given (MXNet's key_var_num_args). */
    private static final Set<String> VAR_ARG_OPS =
            Set.of("Concat", "concat", "ElementWiseSum", "add_n", "stack", "UpSampling", "khatri_rao", "Crop");

    /**
     * Attributes for a call or a node of {@code op} with {@code inputs} positional inputs: a copy of
     * {@code attrs} with {@code num_args} set to the input count when the operator takes a variable
     * number of inputs and the caller did not give it, as MXNet's imperative invoke and symbol
     * composition do (key_var_num_args). Thread-safe.
     */
    public static Map<String, String> withInputCount(String op, Map<String, String> attrs, int inputs) {
        Map<String, String> a = new java.util.LinkedHashMap<>(attrs);
        if (VAR_ARG_OPS.contains(op) && !a.containsKey("num_args")) {
            a.put("num_args", Integer.toString(inputs));
        }
        return a;
    }

    /**
     * Lists every registered operator name, aliases included, in registry order.
     *
     * @return unmodifiable list of names
     * @throws KilnException if the native registry cannot be read
     */
    public static List<String> list() {
        return List.copyOf(names());
    }

    /**
     * Tells whether an operator (or alias) is registered.
     *
     * @param op the operator name
     * @return true when {@link #info(String, Map)} can describe it
     */
    public static boolean isSupported(String op) {
        return op != null && names().contains(op);
    }

    /**
     * Tells whether an attribute key is a hidden attribute ({@code __name__}) rather than an
     * operator parameter.
     *
     * @param key the attribute key
     * @return true for keys that start and end with two underscores
     */
    public static boolean isHiddenKey(String key) {
        return key.length() >= 4 && key.startsWith("__") && key.endsWith("__");
    }

    private static Set<String> names() {
        Set<String> n = names;
        if (n == null) {
            synchronized (Ops.class) {
                n = names;
                if (n == null) {
                    String json = listSource.get();
                    List<Object> arr;
                    try {
                        arr = Json.asArray(Json.parse(json), "op list");
                    } catch (IllegalArgumentException e) {
                        throw new KilnException("the operator registry returned an unreadable list: " + e.getMessage(), e);
                    }
                    List<String> out = new ArrayList<>();
                    for (Object o : arr) {
                        out.add(Json.asString(o, "op list entry"));
                    }
                    n = Collections.unmodifiableSet(new LinkedHashSet<>(out));
                    names = n;
                }
            }
        }
        return n;
    }

    private static String nativeInfo(String op, String attrsJson) {
        return Native.string(KilnNative.kiln_op_info(op, attrsJson), "op " + op);
    }

    private static String nativeList() {
        return Native.string(KilnNative.kiln_op_list(), "op list");
    }

    /**
     * Replaces the registry source and clears the caches. Test support only (reached by
     * reflection from tests that run without the native library); null restores the native one.
     */
    @SuppressWarnings("unused")
    private static synchronized void setSourcesForTesting(BiFunction<String, String, String> info, Supplier<String> list) {
        infoSource = info == null ? Ops::nativeInfo : info;
        listSource = list == null ? Ops::nativeList : list;
        names = null;
        CACHE.clear();
    }
}
