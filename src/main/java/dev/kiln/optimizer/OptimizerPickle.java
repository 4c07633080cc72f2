package dev.kiln.optimizer;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/** Rebuilds an optimizer from its pickled MXNet object. Internal; stateless. */
final class OptimizerPickle {
    private OptimizerPickle() {}

    static Optimizer fromPython(Object o) {
        if (!(o instanceof Pickle.PObject p)) {
            throw new IllegalArgumentException("the second element of a (states, optimizer) pickle must be an optimizer "
                    + "object, got " + Pickle.typeName(o));
        }
        if (!p.cls.module().startsWith("mxnet.optimizer")) {
            throw new IllegalArgumentException("unsupported optimizer class " + p.cls);
        }
        if (!(p.state instanceof Map<?, ?> raw)) {
            throw new IllegalArgumentException("optimizer object " + p.cls + " has no attribute dict");
        }
        Map<String, Object> d = new LinkedHashMap<>();
        raw.forEach((k, v) -> d.put(PyValues.str(k, "optimizer attribute"), v));
        Optimizer opt = Optimizers.create(p.cls.name().toLowerCase(Locale.ROOT), Map.of());
        opt.readPythonDict(d);
        return opt;
    }
}
