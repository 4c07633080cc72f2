package dev.kiln.init;

import dev.kiln.ndarray.NDArray;

/**
 * Initialises weights to 1 (MXNet's {@code mx.init.One}, registered as {@code one} and {@code
 * ones}). Biases stay 0 by the suffix rules. Immutable; thread-safe; never owns the arrays it
 * writes.
 */
public final class One extends Initializer {
    /** Creates the initializer. */
    public One() {
        super();
    }

    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        Fill.constant(arr, 1.0);
    }
}
