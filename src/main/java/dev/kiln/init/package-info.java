/**
 * Weight initializers, MXNet 1.9's {@code mx.init} ({@code python/mxnet/initializer.py}).
 *
 * <p>{@link dev.kiln.init.Initializer#init(dev.kiln.init.InitDesc, dev.kiln.ndarray.NDArray)}
 * applies a variable's {@code __init__} attribute first and otherwise the name-suffix rules
 * ({@code weight} → the initializer's rule, {@code bias}/{@code beta} → 0, {@code gamma} → 1,
 * ...). Built-ins: {@link dev.kiln.init.Zero}, {@link dev.kiln.init.One}, {@link
 * dev.kiln.init.Constant}, {@link dev.kiln.init.Uniform}, {@link dev.kiln.init.Normal}, {@link
 * dev.kiln.init.Xavier}, {@link dev.kiln.init.MSRAPrelu}, {@link dev.kiln.init.Orthogonal},
 * {@link dev.kiln.init.Bilinear}, {@link dev.kiln.init.LSTMBias}, {@link dev.kiln.init.Mixed},
 * {@link dev.kiln.init.Load}. Random initializers are reproducible through {@link
 * dev.kiln.init.Initializer#seed(long)}. Initializers never own the arrays they write.
 */
package dev.kiln.init;
