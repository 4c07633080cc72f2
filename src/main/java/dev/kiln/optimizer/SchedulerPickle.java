package dev.kiln.optimizer;

import dev.kiln.optimizer.lr.CosineScheduler;
import dev.kiln.optimizer.lr.FactorScheduler;
import dev.kiln.optimizer.lr.LRScheduler;
import dev.kiln.optimizer.lr.MultiFactorScheduler;
import dev.kiln.optimizer.lr.PolyScheduler;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The four schedulers as pickled MXNet objects ({@code mxnet.lr_scheduler.<Class>} with their
 * {@code __dict__}), for optimizers dumped with their state. Internal; stateless.
 */
final class SchedulerPickle {
    private static final String MODULE = "mxnet.lr_scheduler";

    private SchedulerPickle() {}

    static Pickle.PObject toPython(LRScheduler s) {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("base_lr", s.baseLr());
        d.put("warmup_steps", (long) s.warmupSteps());
        d.put("warmup_final_lr", s.warmupFinalLr());
        d.put("warmup_begin_lr", s.warmupBeginLr());
        d.put("warmup_mode", s.warmupMode().mxName());
        String cls;
        if (s instanceof FactorScheduler f) {
            cls = "FactorScheduler";
            d.put("step", f.step());
            d.put("factor", f.factor());
            d.put("stop_factor_lr", f.stopFactorLr());
            d.put("count", f.count());
        } else if (s instanceof MultiFactorScheduler m) {
            cls = "MultiFactorScheduler";
            List<Object> steps = new ArrayList<>();
            for (long x : m.steps()) {
                steps.add(x);
            }
            d.put("step", steps);
            d.put("cur_step_ind", (long) m.curStepInd());
            d.put("factor", m.factor());
            d.put("count", m.count());
        } else if (s instanceof PolyScheduler p) {
            cls = "PolyScheduler";
            d.put("power", p.power());
            d.put("base_lr_orig", p.baseLrOrig());
            d.put("max_update", p.maxUpdate());
            d.put("final_lr", p.finalLr());
            d.put("max_steps", p.maxUpdate() - p.warmupSteps());
        } else if (s instanceof CosineScheduler c) {
            cls = "CosineScheduler";
            d.put("base_lr_orig", c.baseLrOrig());
            d.put("max_update", c.maxUpdate());
            d.put("final_lr", c.finalLr());
            d.put("max_steps", c.maxUpdate() - c.warmupSteps());
        } else {
            throw new IllegalArgumentException("cannot pickle scheduler " + s.getClass().getName()
                    + " (only Factor, MultiFactor, Poly and Cosine schedulers)");
        }
        return new Pickle.PObject(new Pickle.Global(MODULE, cls), Pickle.Tuple.of(), true, d);
    }

    static LRScheduler fromPython(Object o) {
        if (!(o instanceof Pickle.PObject p) || !(p.state instanceof Map<?, ?> raw)) {
            throw new IllegalArgumentException("lr_scheduler must be a pickled scheduler object, got " + Pickle.typeName(o));
        }
        Map<String, Object> d = new LinkedHashMap<>();
        raw.forEach((k, v) -> d.put(PyValues.str(k, "scheduler attribute"), v));
        String cls = p.cls.name();
        if (!p.cls.module().startsWith("mxnet")) {
            throw new IllegalArgumentException("unsupported scheduler class " + p.cls);
        }
        double finalLr = PyValues.dbl(d.get("warmup_final_lr"), "warmup_final_lr");
        int warmup = (int) PyValues.lng(d.getOrDefault("warmup_steps", 0L), "warmup_steps");
        double begin = PyValues.dbl(d.getOrDefault("warmup_begin_lr", 0.0), "warmup_begin_lr");
        LRScheduler.WarmupMode mode = LRScheduler.WarmupMode.of(PyValues.str(d.getOrDefault("warmup_mode", "linear"),
                "warmup_mode"));
        LRScheduler s;
        switch (cls) {
            case "FactorScheduler" -> {
                FactorScheduler f = new FactorScheduler(PyValues.lng(d.get("step"), "step"),
                        PyValues.dbl(d.get("factor"), "factor"), PyValues.dbl(d.get("stop_factor_lr"), "stop_factor_lr"),
                        finalLr, warmup, begin, mode);
                f.setCount(PyValues.lng(d.getOrDefault("count", 0L), "count"));
                s = f;
            }
            case "MultiFactorScheduler" -> {
                if (!(d.get("step") instanceof List<?> l)) {
                    throw new IllegalArgumentException("MultiFactorScheduler.step must be a list");
                }
                long[] steps = new long[l.size()];
                for (int i = 0; i < steps.length; i++) {
                    steps[i] = PyValues.lng(l.get(i), "step[" + i + "]");
                }
                MultiFactorScheduler m = new MultiFactorScheduler(steps, PyValues.dbl(d.get("factor"), "factor"), finalLr,
                        warmup, begin, mode);
                m.setState((int) PyValues.lng(d.getOrDefault("cur_step_ind", 0L), "cur_step_ind"),
                        PyValues.lng(d.getOrDefault("count", 0L), "count"));
                s = m;
            }
            case "PolyScheduler" -> s = new PolyScheduler(PyValues.lng(d.get("max_update"), "max_update"),
                    PyValues.dbl(d.getOrDefault("base_lr_orig", finalLr), "base_lr_orig"),
                    PyValues.dbl(d.get("power"), "power"), PyValues.dbl(d.get("final_lr"), "final_lr"), warmup, begin, mode);
            case "CosineScheduler" -> s = new CosineScheduler(PyValues.lng(d.get("max_update"), "max_update"),
                    PyValues.dbl(d.getOrDefault("base_lr_orig", finalLr), "base_lr_orig"),
                    PyValues.dbl(d.get("final_lr"), "final_lr"), warmup, begin, mode);
            default -> throw new IllegalArgumentException("unsupported scheduler class " + p.cls);
        }
        s.setBaseLr(PyValues.dbl(d.get("base_lr"), "base_lr"));
        return s;
    }
}
