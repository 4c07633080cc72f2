package dev.kiln.optimizer;

import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The optimizer registry, MXNet's {@code mx.optimizer.create} / {@code register}: names are the
 * lower-cased MXNet class names and lookup is case-insensitive.
 *
 * <p>Built in: {@code sgd} ({@code ccsgd} is MXNet's deprecated alias), {@code nag}, {@code
 * adam}, {@code adagrad}, {@code rmsprop}, {@code adadelta}, {@code ftrl}, {@code signum},
 * {@code lamb}, {@code adamax}, {@code nadam}, {@code ftml}. MXNet's {@code lars}, {@code lbsgd},
 * {@code dcasgd}, {@code sgld}, {@code test} and {@code groupadagrad} are not implemented and
 * fail with a message saying so.
 *
 * <p>Thread-safety: safe from any thread (concurrent registry).
 */
public final class Optimizers {
    private static final Logger LOG = LoggerFactory.getLogger(Optimizers.class);
    private static final Map<String, Function<Map<String, ?>, Optimizer>> REGISTRY = new ConcurrentHashMap<>();
    private static final Set<String> NOT_IMPLEMENTED = Set.of("lars", "lbsgd", "dcasgd", "sgld", "test", "groupadagrad");

    static {
        REGISTRY.put("sgd", SGD::new);
        REGISTRY.put("ccsgd", p -> {
            LOG.warn("ccSGD is deprecated; use sgd");
            return new SGD(p);
        });
        REGISTRY.put("nag", NAG::new);
        REGISTRY.put("adam", Adam::new);
        REGISTRY.put("adagrad", AdaGrad::new);
        REGISTRY.put("rmsprop", RMSProp::new);
        REGISTRY.put("adadelta", AdaDelta::new);
        REGISTRY.put("ftrl", Ftrl::new);
        REGISTRY.put("signum", Signum::new);
        REGISTRY.put("lamb", LAMB::new);
        REGISTRY.put("adamax", Adamax::new);
        REGISTRY.put("nadam", Nadam::new);
        REGISTRY.put("ftml", FTML::new);
    }

    private Optimizers() {}

    /**
     * Creates an optimizer by name, MXNet's {@code mx.optimizer.create(name, **params)}.
     *
     * @param name the registry name, case-insensitive (e.g. {@code "SGD"}, {@code "adam"})
     * @param params MXNet keyword arguments ({@code learning_rate, wd, momentum, rescale_grad,
     *     clip_gradient, lr_scheduler, sym, param_idx2name, begin_num_update, multi_precision},
     *     and the optimizer's own); null for none
     * @return a new optimizer
     * @throws IllegalArgumentException "Cannot find optimizer &lt;name&gt;" for an unknown name,
     *     or for unknown parameters / wrong types
     */
    public static Optimizer create(String name, Map<String, ?> params) {
        Objects.requireNonNull(name, "optimizer name");
        String key = name.toLowerCase(Locale.ROOT);
        Function<Map<String, ?>, Optimizer> f = REGISTRY.get(key);
        if (f == null) {
            if (NOT_IMPLEMENTED.contains(key)) {
                throw new IllegalArgumentException("Cannot find optimizer " + name + " (MXNet's " + key
                        + " is not implemented in Kiln)");
            }
            throw new IllegalArgumentException("Cannot find optimizer " + name);
        }
        return f.apply(params == null ? Map.of() : params);
    }

    /**
     * Registers an optimizer under a name (lower-cased), replacing (with a warning) an existing
     * one, like MXNet's {@code @register}.
     *
     * @param name the name
     * @param factory builds the optimizer from keyword arguments
     */
    public static void register(String name, Function<Map<String, ?>, Optimizer> factory) {
        Objects.requireNonNull(factory, "factory");
        String key = Objects.requireNonNull(name, "name").toLowerCase(Locale.ROOT);
        if (REGISTRY.put(key, factory) != null) {
            LOG.warn("New optimizer {} is overriding an existing optimizer", key);
        }
    }

    /** @return the registered names, sorted */
    public static Set<String> names() {
        return new TreeMap<>(REGISTRY).keySet();
    }
}
