package dev.kiln.kvstore;

import java.nio.IntBuffer;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * MXNet's 2-bit gradient compression ({@code set_gradient_compression({'type': '2bit',
 * 'threshold': t})}). Each value is added to a residual kept on the sender; a residual at or above
 * {@code t} sends {@code +t} (and keeps {@code residual - t}), one at or below {@code -t} sends
 * {@code -t}, anything between sends 0. Sixteen 2-bit codes are packed per 32-bit word, so the
 * payload is 1/16 of the float32 gradient. The receiver sums the dequantized values.
 *
 * <p>Code layout in a word: value {@code i} of a group of 16 sits at bits {@code 30 - 2i}; {@code 11}
 * means {@code +t}, {@code 10} means {@code -t}, {@code 00} means 0 (the same codes as MXNet's
 * {@code quantize_2bit}). Thread-safety: not thread-safe. Owns only Java arrays.
 */
final class GradientCompression {
    static final int PER_WORD = 16;

    final float threshold;
    private final Map<String, float[]> residuals = new HashMap<>();

    private GradientCompression(float threshold) {
        this.threshold = threshold;
    }

    /** Parses MXNet's parameters: {@code type} (only "2bit") and {@code threshold} (default 0.5, positive). */
    static GradientCompression parse(Map<String, ?> params) {
        Object type = params.get("type");
        if (type == null) {
            throw new IllegalArgumentException("gradient compression needs a 'type' (Kiln has '2bit'), got " + params);
        }
        if (!"2bit".equals(type.toString().toLowerCase(Locale.ROOT))) {
            throw new IllegalArgumentException("gradient compression type '" + type + "' is not supported: Kiln has '2bit' (as MXNet 1.9)");
        }
        for (String k : params.keySet()) {
            if (!k.equals("type") && !k.equals("threshold")) {
                throw new IllegalArgumentException("unknown gradient compression parameter '" + k + "' (expected type, threshold)");
            }
        }
        Object t = params.get("threshold");
        double threshold = t == null ? 0.5 : Double.parseDouble(t.toString());
        if (!(threshold > 0) || Double.isInfinite(threshold)) {
            throw new IllegalArgumentException("gradient compression threshold must be a positive finite number, got " + t);
        }
        return new GradientCompression((float) threshold);
    }

    /** Words needed for {@code n} values. */
    static int words(int n) {
        return (n + PER_WORD - 1) / PER_WORD;
    }

    /**
     * Adds {@code grad} to the residual of {@code slot} (created at zero on first use) and writes the
     * {@link #words(int)} packed codes to {@code out} at its position, which advances.
     */
    void quantize(String slot, float[] grad, IntBuffer out) {
        float[] res = residuals.computeIfAbsent(slot, k -> new float[grad.length]);
        if (res.length != grad.length) {
            throw new IllegalArgumentException("gradient compression: '" + slot + "' changed size from " + res.length + " to " + grad.length);
        }
        float t = threshold;
        for (int w = 0; w < words(grad.length); w++) {
            int word = 0;
            int end = Math.min(grad.length, (w + 1) * PER_WORD);
            for (int i = w * PER_WORD; i < end; i++) {
                float r = res[i] + grad[i];
                int shift = 30 - 2 * (i - w * PER_WORD);
                if (r >= t) {
                    word |= 3 << shift;
                    r -= t;
                } else if (r <= -t) {
                    word |= 2 << shift;
                    r += t;
                }
                res[i] = r;
            }
            out.put(word);
        }
    }

    /** Adds the dequantized values of {@code n} codes read from {@code in} (at its position, which advances) to {@code acc}. */
    void dequantizeAdd(IntBuffer in, float[] acc) {
        float t = threshold;
        for (int w = 0; w < words(acc.length); w++) {
            int word = in.get();
            int end = Math.min(acc.length, (w + 1) * PER_WORD);
            for (int i = w * PER_WORD; i < end; i++) {
                int code = (word >>> (30 - 2 * (i - w * PER_WORD))) & 3;
                if (code == 3) {
                    acc[i] += t;
                } else if (code == 2) {
                    acc[i] -= t;
                }
            }
        }
    }
}
