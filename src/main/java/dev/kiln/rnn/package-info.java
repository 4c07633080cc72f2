/**
 * MXNet 1.x's symbolic recurrent-cell API ({@code mxnet.rnn}, {@code python/mxnet/rnn/rnn_cell.py}):
 * cells that build unrolled graphs out of ordinary operators ({@link dev.kiln.rnn.RNNCell},
 * {@link dev.kiln.rnn.LSTMCell}, {@link dev.kiln.rnn.GRUCell}), combinators ({@link
 * dev.kiln.rnn.SequentialRNNCell}, {@link dev.kiln.rnn.BidirectionalCell}, {@link
 * dev.kiln.rnn.DropoutCell}, {@link dev.kiln.rnn.ResidualCell}, {@link dev.kiln.rnn.ZoneoutCell})
 * and {@link dev.kiln.rnn.FusedRNNCell}, which emits the fused {@code RNN} operator and converts
 * its packed parameter vector to and from the per-cell arrays.
 *
 * <p>Parameter, node and state names follow MXNet exactly ({@code lstm_i2h_weight}, {@code
 * lstm_t3_out}, {@code lstm_begin_state_0}), so checkpoints and argument lists interoperate.
 *
 * <p>Ownership: cells create {@link dev.kiln.symbol.Symbol}s, which hold no native memory. The
 * weight conversions ({@code packWeights}/{@code unpackWeights}) return new {@link
 * dev.kiln.ndarray.NDArray}s that the caller owns (they join the current {@link
 * dev.kiln.ndarray.NDScope} if one is open); arrays passed in are never closed or modified.
 *
 * <p>Thread-safety: cells are mutable builders (step counters, the shared {@link
 * dev.kiln.rnn.RNNParams}); use one cell from one thread at a time. The symbols they return are
 * immutable.
 */
package dev.kiln.rnn;
