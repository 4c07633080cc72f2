package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Applies an {@link Optimizer} to parameters and owns their optimizer states, MXNet's {@code
 * mx.optimizer.Updater} / {@code get_updater} (module-api spec §5.4).
 *
 * <p>{@link #update} takes one step for many parameters: it selects the optimizer's per-device
 * update counts from the first weight's device, creates missing states (lazily, on first use),
 * lets the optimizer record each parameter's native op calls and runs them all in <b>one native
 * call</b> through a {@link FusedUpdate}. The fused update is cached and reused while the keys,
 * arrays and op structure stay the same (only the per-step values, such as the learning rate,
 * change); one is kept per set of weights, so updating each device's copy in turn (several
 * contexts, the optimizer off the kvstore) reuses one plan per device.
 *
 * <p>State keys are {@link Integer} ({@code param_index * num_devices + device} for local
 * updates) or {@link String} (parameter names, for updates on a kvstore). A state is null, an
 * {@link NDArray} or an unmodifiable {@link List} (a Python tuple) of states. {@link
 * #getStates(boolean)} and {@link #setStates(byte[])} read and write MXNet's {@code .states}
 * pickle (spec §7.4); states loaded from a file are moved to the weight's device on first use.
 *
 * <p>Ownership: the Updater owns the state arrays, its fused plans and their scratch arrays and
 * frees them in {@link #close()} (idempotent) or when {@link #setStates} replaces them; a plan is
 * also freed once its weights are closed, or when more than 16 are kept (the least recently used). Weights and gradients
 * are borrowed. Arrays returned by {@link #states()} stay owned by the Updater.
 *
 * <p>Thread-safety: not thread-safe; use from one thread at a time.
 */
public final class Updater implements AutoCloseable {
    private Optimizer optimizer;
    private final Map<Object, Object> states = new LinkedHashMap<>();
    private final Map<Object, Boolean> statesSynced = new LinkedHashMap<>();
    /**
     * The fused updates built so far, most recently used first: one per set of weights updated
     * (Module updates each device's parameters with its own call when the optimizer does not run
     * on the kvstore), each with the scratch arrays its steps use, at most {@link #MAX_PLANS}.
     */
    private final List<Plan> plans = new ArrayList<>();
    private int builds;

    private static final int MAX_PLANS = 16;

    /** One fused update, the calls it was built for, the first weight they update (borrowed) and its scratch arrays (owned). */
    private static final class Plan {
        final FusedUpdate fused;
        final List<UpdateStep.Call> calls;
        final NDArray firstWeight;
        final List<NDArray> scratch;

        Plan(FusedUpdate fused, List<UpdateStep.Call> calls, NDArray firstWeight, List<NDArray> scratch) {
            this.fused = fused;
            this.calls = calls;
            this.firstWeight = firstWeight;
            this.scratch = scratch;
        }

        void close() {
            fused.close();
            scratch.forEach(NDArray::close);
        }
    }
    private boolean closed;

    /**
     * Creates an updater with no states.
     *
     * @param opt the optimizer (used, not copied)
     */
    public Updater(Optimizer opt) {
        this.optimizer = Objects.requireNonNull(opt, "optimizer");
    }

    /** @return the optimizer (replaced by {@link #setStates} when the pickle holds one) */
    public Optimizer optimizer() {
        return optimizer;
    }

    /**
     * One optimizer step for one weight.
     *
     * @param key the state key (Integer or String)
     * @param grad the gradient (borrowed)
     * @param weight the weight, updated in place (borrowed)
     */
    public void update(Object key, NDArray grad, NDArray weight) {
        update(Collections.singletonList(key), List.of(grad), List.of(weight));
    }

    /**
     * One optimizer step for many parameters at once, in one native call.
     *
     * @param keys state keys, Integer or String (a {@code byte[]} key is decoded as UTF-8)
     * @param grads gradients, same order (borrowed)
     * @param weights weights, updated in place (borrowed)
     * @throws IllegalArgumentException for lists of different lengths, duplicate keys, null
     *     entries, a gradient whose shape or dtype differs from its weight, or a loaded state
     *     whose shape does not match its weight
     * @throws IllegalStateException after {@link #close()} or for closed arrays
     * @throws dev.kiln.engine.KilnException when a native op fails (e.g. an unsupported dtype)
     */
    public void update(List<Object> keys, List<NDArray> grads, List<NDArray> weights) {
        checkOpen();
        if (keys.size() != grads.size() || keys.size() != weights.size()) {
            throw new IllegalArgumentException("Updater.update: " + keys.size() + " keys, " + grads.size()
                    + " gradients and " + weights.size() + " weights");
        }
        if (keys.isEmpty()) {
            return;
        }
        List<Object> ks = new ArrayList<>(keys.size());
        Set<Object> seen = new HashSet<>();
        for (int i = 0; i < keys.size(); i++) {
            Object k = Optimizer.normKey(keys.get(i), "state key");
            if (!seen.add(k)) {
                throw new IllegalArgumentException("Updater.update: key " + k + " appears twice in one call");
            }
            ks.add(k);
            NDArray w = Objects.requireNonNull(weights.get(i), "weight of key " + k);
            NDArray g = Objects.requireNonNull(grads.get(i), "gradient of key " + k);
            if (!w.shape().equals(g.shape())) {
                throw new IllegalArgumentException("Updater.update: key " + k + ": gradient shape " + g.shape()
                        + " differs from weight shape " + w.shape());
            }
            if (w.dtype() != g.dtype()) {
                throw new IllegalArgumentException("Updater.update: key " + k + ": gradient dtype " + g.dtype()
                        + " differs from weight dtype " + w.dtype());
            }
        }
        optimizer.setCurrentContext(weights.get(0).context().devId());
        List<Object> st = new ArrayList<>(ks.size());
        for (int i = 0; i < ks.size(); i++) {
            Object k = ks.get(i);
            NDArray w = weights.get(i);
            if (!states.containsKey(k)) {
                Object s = optimizer.createStateMultiPrecision(k, w);
                detachAll(s);
                states.put(k, s);
                statesSynced.put(k, true);
            } else if (!statesSynced.getOrDefault(k, true)) {
                Object s = syncState(k, states.get(k), w);
                states.put(k, s);
                statesSynced.put(k, true);
            }
            st.add(states.get(k));
        }
        // plans of weights closed since (a rebind, a reshape) never match again: free them now
        for (Iterator<Plan> it = plans.iterator(); it.hasNext();) {
            Plan p = it.next();
            if (p.firstWeight.isClosed()) {
                p.close();
                it.remove();
            }
        }
        Plan plan = null;  // the plan last built for these weights: its scratch is offered to the step
        for (Plan p : plans) {
            if (p.firstWeight == weights.get(0)) {
                plan = p;
                break;
            }
        }
        UpdateStep step = new UpdateStep(plan == null ? List.of() : plan.scratch);
        try {
            optimizer.step(step, ks, weights, grads, st);
        } catch (RuntimeException e) {
            step.createdScratch().forEach(NDArray::close);
            throw e;
        }
        if (plan == null || !sameCalls(step.calls(), plan.calls)) {
            plan = rebuild(step, plan, weights.get(0));
        }
        plans.remove(plan);
        plans.add(0, plan);
        plan.fused.run(step.dynamicValues());
    }

    private static boolean sameCalls(List<UpdateStep.Call> a, List<UpdateStep.Call> b) {
        if (a.size() != b.size()) {
            return false;
        }
        for (int i = 0; i < a.size(); i++) {
            if (!a.get(i).sameShape(b.get(i))) {
                return false;
            }
        }
        return true;
    }

    /**
     * A new plan for the step's calls, replacing {@code old} (the plan of the same weights, whose
     * scratch arrays the step did not reuse are freed), or added (the least recently used plan
     * closed beyond {@link #MAX_PLANS}).
     */
    private Plan rebuild(UpdateStep step, Plan old, NDArray firstWeight) {
        FusedUpdate f = new FusedUpdate();
        try {
            for (UpdateStep.Call c : step.calls()) {
                Map<String, Object> stat = new LinkedHashMap<>();
                List<String> dyn = new ArrayList<>();
                for (int i = 0; i < c.keys().length; i++) {
                    if (c.values()[i] instanceof Number) {
                        dyn.add(c.keys()[i]);
                    } else {
                        stat.put(c.keys()[i], c.values()[i]);
                    }
                }
                f.add(c.op(), stat, dyn, List.of(c.inputs()), List.of(c.outputs()));
            }
        } catch (RuntimeException e) {
            f.close();
            step.createdScratch().forEach(NDArray::close);
            throw e;
        }
        Plan plan = new Plan(f, step.calls(), firstWeight, new ArrayList<>(step.scratchArrays()));
        if (old != null) {
            plans.remove(old);
            old.fused.close();
            // free the scratch arrays of the old plan that the new one does not use
            Set<NDArray> keep = Collections.newSetFromMap(new IdentityHashMap<>());
            keep.addAll(plan.scratch);
            for (NDArray a : old.scratch) {
                if (!keep.contains(a)) {
                    a.close();
                }
            }
        }
        while (plans.size() >= MAX_PLANS) {
            plans.remove(plans.size() - 1).close();
        }
        builds++;
        return plan;
    }

    /** How many fused updates were built (a step with the same calls as its weight set's plan reuses it). For tests. */
    int fusedBuilds() {
        return builds;
    }

    /**
     * Whether the last step's fused update replays a CUDA graph (see {@link FusedUpdate#isGraphRecorded}):
     * on one GPU, from the second step in a row with the same learning rates. False on the CPU.
     *
     * @return true when the last step was a replay or the recording it ended with. Not thread-safe
     *     (as the Updater).
     */
    public boolean fusedGraphRecorded() {
        return !plans.isEmpty() && plans.get(0).fused.isGraphRecorded();
    }

    /** The number of op calls of the last step's fused update (0 before the first step). For tests. */
    int fusedSize() {
        return plans.isEmpty() ? 0 : plans.get(0).fused.size();
    }

    /** How many fused updates are kept (one per set of weights updated). For tests. */
    int fusedPlans() {
        return plans.size();
    }

    private void invalidatePlan() {
        plans.forEach(Plan::close);
        plans.clear();
    }

    /** Moves a loaded state to the weight's device and checks its shapes. */
    private Object syncState(Object key, Object s, NDArray w) {
        if (s == null) {
            return null;
        }
        if (s instanceof NDArray a) {
            if (!a.shape().equals(w.shape())) {
                throw new IllegalArgumentException("optimizer state of key " + key + " has shape " + a.shape()
                        + ", its weight has shape " + w.shape());
            }
            if (a.context().equals(w.context())) {
                return a;
            }
            invalidatePlan();
            NDArray moved = a.copyTo(w.context()).detach();
            a.close();
            return moved;
        }
        List<?> l = (List<?>) s;
        List<Object> out = new ArrayList<>(l.size());
        for (Object o : l) {
            out.add(syncState(key, o, w));
        }
        return Collections.unmodifiableList(out);
    }

    private static void detachAll(Object s) {
        if (s instanceof NDArray a) {
            a.detach();
        } else if (s instanceof List<?> l) {
            l.forEach(Updater::detachAll);
        } else if (s != null) {
            throw new IllegalStateException("optimizer state must be null, an NDArray or a List, got " + s.getClass());
        }
    }

    private static void closeAll(Object s) {
        if (s instanceof NDArray a) {
            a.close();
        } else if (s instanceof List<?> l) {
            l.forEach(Updater::closeAll);
        }
    }

    /**
     * The states by key, in creation order: null, an NDArray, or an unmodifiable List (tuple).
     *
     * @return an unmodifiable view; the arrays stay owned by this Updater
     */
    public Map<Object, Object> states() {
        return Collections.unmodifiableMap(states);
    }

    /**
     * The states as MXNet's {@code .states} pickle (protocol 3): a dict key -> state, where an
     * NDArray is {@code mxnet.ndarray.ndarray.NDArray} with a {@code bytearray} handle holding one
     * raw V2 record, or, with {@code dumpOptimizer}, the tuple {@code (dict, optimizer)} with the
     * optimizer pickled as an {@code mxnet.optimizer.optimizer.<Class>} object.
     *
     * @param dumpOptimizer whether to include the optimizer (hyper-parameters, counts, scheduler)
     * @return the pickle bytes
     * @throws IllegalStateException after {@link #close()}
     * @throws IllegalArgumentException with {@code dumpOptimizer}, for a scheduler other than the
     *     four built-in ones (it has no MXNet form)
     */
    public byte[] getStates(boolean dumpOptimizer) {
        checkOpen();
        Map<Object, Object> d = new LinkedHashMap<>();
        states.forEach((k, v) -> d.put(k, StatesCodec.toPython(v)));
        if (!dumpOptimizer) {
            return Pickle.dump(d);
        }
        Pickle.PObject opt = new Pickle.PObject(new Pickle.Global("mxnet.optimizer.optimizer", optimizer.pythonClassName()),
                Pickle.Tuple.of(), true, optimizer.pythonDict());
        return Pickle.dump(Pickle.Tuple.of(d, opt));
    }

    /**
     * Replaces the states from a {@code .states} pickle written by MXNet or {@link #getStates}:
     * a dict key -> state, or a 2-tuple {@code (dict, optimizer)}, which also replaces the
     * optimizer (MXNet's {@code set_states}). The loaded arrays are created on the CPU and moved
     * to each weight's device on its next update. The previous states are closed.
     *
     * @param pickle the pickle bytes
     * @throws IllegalArgumentException if the pickle is malformed or holds something other than
     *     states (e.g. sparse arrays or an unsupported optimizer class); the current states are
     *     then kept
     * @throws IllegalStateException after {@link #close()}
     */
    public void setStates(byte[] pickle) {
        checkOpen();
        Object v = Pickle.load(pickle);
        Object dict = v;
        Optimizer newOpt = null;
        if (v instanceof Pickle.Tuple t && t.size() == 2) {
            dict = t.get(0);
            newOpt = OptimizerPickle.fromPython(t.get(1));
        }
        if (!(dict instanceof Map<?, ?> m)) {
            throw new IllegalArgumentException("optimizer states pickle must hold a dict (or a (dict, optimizer) tuple), got "
                    + Pickle.typeName(dict));
        }
        Map<Object, Object> loaded = new LinkedHashMap<>();
        try {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                Object k = Optimizer.normKey(PyValues.key(e.getKey()), "state key");
                loaded.put(k, null);
                loaded.put(k, StatesCodec.fromPython(e.getValue(), "state of key " + k));
            }
        } catch (RuntimeException e) {
            loaded.values().forEach(Updater::closeAll);
            throw e;
        }
        invalidatePlan();
        states.values().forEach(Updater::closeAll);
        states.clear();
        statesSynced.clear();
        states.putAll(loaded);
        for (Object k : loaded.keySet()) {
            statesSynced.put(k, false);
        }
        if (newOpt != null) {
            optimizer = newOpt;
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("Updater is closed");
        }
    }

    /** Frees the states and scratch arrays. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        invalidatePlan();
        states.values().forEach(Updater::closeAll);
        states.clear();
        statesSynced.clear();
    }
}
