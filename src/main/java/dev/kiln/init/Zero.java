package dev.kiln.init;

import dev.kiln.ndarray.NDArray;

/**
 * Initialises weights to 0 (MXNet's {@code mx.init.Zero}, registered as {@code zero} and {@code
 * zeros}). Biases, gammas and betas follow the usual suffix rules. Immutable; thread-safe; never
 * owns the arrays it writes.
 */
public final class Zero extends Initializer {
    /** Creates the initializer. */
    public Zero() {
        super();
    }

    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        Fill.constant(arr, 0.0);
    }
}
