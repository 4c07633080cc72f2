package dev.kiln.bench;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.init.InitDesc;
import dev.kiln.init.Initializer;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.optimizer.FusedUpdate;
import dev.kiln.symbol.Symbol;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * Kiln's side of a training-step benchmark: the network bound once with its inputs in place
 * (inputs need no gradient), parameters initialized, and SGD with momentum for every parameter in
 * one native {@link FusedUpdate} call. {@link #run()} is one forward + backward + update.
 * Owns the executor, the momentum arrays and the update; not thread-safe.
 */
final class KilnTrainStep implements AutoCloseable {
    final Executor exec;
    private final FusedUpdate update = new FusedUpdate();
    private final List<NDArray> moms = new ArrayList<>();
    private final double[] lr;

    /**
     * @param inputs values of the graph's inputs (data, labels) by name, with their shapes in {@code shapes}
     * @param init the parameter initializer, called with the name {@code initName} maps each parameter to
     */
    KilnTrainStep(Symbol net, Map<String, long[]> shapes, Map<String, float[]> inputs, Initializer init,
            UnaryOperator<String> initName, double learningRate, double momentum) {
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            reqs.put(a, inputs.containsKey(a) ? GradReq.NULL : GradReq.WRITE);
        }
        exec = Executor.simpleBind(net, Context.cpu(), shapes, Map.of(), reqs, new Executor.Options());
        inputs.forEach((k, v) -> exec.argDict().get(k).set(v));
        Initializer.seed(42);
        Map<String, Object> sgd = Map.of("momentum", momentum, "wd", 0.0, "rescale_grad", 1.0);
        for (Map.Entry<String, NDArray> e : exec.gradDict().entrySet()) {
            NDArray w = exec.argDict().get(e.getKey());
            init.init(new InitDesc(initName.apply(e.getKey())), w);
            NDArray mom = NDArray.zeros(w.shape(), DType.FLOAT32, Context.cpu()).detach();
            moms.add(mom);
            update.add("sgd_mom_update", sgd, List.of("lr"), List.of(w, e.getValue(), mom), List.of(w));
        }
        lr = new double[update.size()];
        Arrays.fill(lr, learningRate);
        System.out.println("# kiln threads=" + Engine.numThreads() + " simd=" + Engine.simdIsa() + " blas="
                + Engine.blasConfig());
    }

    void run() {
        exec.forwardBackward();
        update.run(lr);
    }

    @Override
    public void close() {
        update.close();
        moms.forEach(NDArray::close);
        exec.close();
    }
}
