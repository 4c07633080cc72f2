package dev.kiln.rnn;

import dev.kiln.init.InitDesc;
import dev.kiln.init.Initializer;
import dev.kiln.ndarray.NDArray;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Initializer of a fused RNN parameter vector, MXNet's {@code mx.init.FusedRNN} (registered as
 * {@code fusedrnn}; {@link FusedRNNCell} puts it in the {@code __init__} attribute of {@code
 * <prefix>parameters}). It unpacks the vector into per-gate arrays, initializes each with the
 * inner initializer (or the global one when {@code init} is null) by its name ({@code ..._weight}
 * / {@code ..._bias}), sets the LSTM forget-gate biases ({@code ..._f_bias}) to {@code
 * forget_bias}, and packs the result back.
 *
 * <p>Immutable and thread-safe; never owns the arrays it writes (temporaries are closed).
 */
public final class FusedRNN extends Initializer {
    private final Initializer init;
    private final int numHidden;
    private final int numLayers;
    private final String mode;
    private final boolean bidirectional;
    private final double forgetBias;

    /**
     * Creates the initializer ({@code FusedRNN(init, num_hidden, num_layers, mode, bidirectional,
     * forget_bias)}).
     *
     * @param init the inner initializer, or null to use the global one
     * @param numHidden hidden units
     * @param numLayers layers
     * @param mode rnn_relu, rnn_tanh, lstm or gru
     * @param bidirectional two directions
     * @param forgetBias LSTM forget-gate bias
     */
    public FusedRNN(Initializer init, int numHidden, int numLayers, String mode, boolean bidirectional, double forgetBias) {
        super(kw(init, numHidden, numLayers, mode, bidirectional, forgetBias));
        FusedRNNCell.gates(mode);
        this.init = init;
        this.numHidden = numHidden;
        this.numLayers = numLayers;
        this.mode = mode;
        this.bidirectional = bidirectional;
        this.forgetBias = forgetBias;
    }

    private static Map<String, Object> kw(Initializer init, int h, int l, String mode, boolean bi, double fb) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("init", init == null ? null : init.dumps());
        m.put("num_hidden", h);
        m.put("num_layers", l);
        m.put("mode", mode);
        m.put("bidirectional", bi);
        m.put("forget_bias", fb);
        return m;
    }

    /** Registers {@code fusedrnn} with {@link Initializer#register}. Idempotent. */
    static void register() {
        Initializer.register("fusedrnn", FusedRNN::fromKwargs);
    }

    static {
        register();
    }

    static FusedRNN fromKwargs(Map<String, Object> k) {
        Object in = k.get("init");
        Initializer inner = in == null ? null : Initializer.create(in);
        Object fb = k.getOrDefault("forget_bias", 1.0);
        Object bi = k.getOrDefault("bidirectional", false);
        return new FusedRNN(inner, ((Number) req(k, "num_hidden")).intValue(), ((Number) req(k, "num_layers")).intValue(),
                (String) req(k, "mode"), Boolean.TRUE.equals(bi), ((Number) fb).doubleValue());
    }

    private static Object req(Map<String, Object> k, String key) {
        Object v = k.get(key);
        if (v == null) {
            throw new IllegalArgumentException("fusedrnn: missing argument " + key);
        }
        return v;
    }

    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        FusedRNNCell cell = new FusedRNNCell(numHidden, numLayers, mode, bidirectional, 0.0, false, forgetBias, "", null);
        Map<String, NDArray> args = cell.unpackWeights(Map.of("parameters", arr));
        List<NDArray> made = new ArrayList<>(args.values());
        try {
            for (Map.Entry<String, NDArray> e : args.entrySet()) {
                String name = e.getKey();
                Initializer global = desc.globalInit() != null ? desc.globalInit() : this;
                InitDesc d = new InitDesc(name, null, global);
                if ("lstm".equals(mode) && name.endsWith("_f_bias")) {
                    e.getValue().fill(forgetBias);
                } else if (init == null) {
                    if (global == this) {
                        throw new IllegalArgumentException("fusedrnn: no inner initializer and no global initializer for "
                                + desc.name());
                    }
                    global.init(d, e.getValue());
                } else {
                    init.init(d, e.getValue());
                }
            }
            Map<String, NDArray> packed = cell.packWeights(args);
            NDArray p = packed.get("parameters");
            try {
                arr.set(java.nio.ByteBuffer.wrap(p.toBytes()));
            } finally {
                p.close();
            }
        } finally {
            made.forEach(NDArray::close);
        }
    }
}
