/**
 * Evaluation metrics, MXNet 1.9's {@code mx.metric}: {@link dev.kiln.metric.EvalMetric} with
 * local and global statistics, the built-in metrics ({@link dev.kiln.metric.Accuracy}, {@link
 * dev.kiln.metric.TopKAccuracy}, {@link dev.kiln.metric.F1}, {@link dev.kiln.metric.MCC}, {@link
 * dev.kiln.metric.Perplexity}, {@link dev.kiln.metric.MAE}, {@link dev.kiln.metric.MSE}, {@link
 * dev.kiln.metric.RMSE}, {@link dev.kiln.metric.CrossEntropy}, {@link
 * dev.kiln.metric.NegativeLogLikelihood}, {@link dev.kiln.metric.PearsonCorrelation}, {@link
 * dev.kiln.metric.PCC}, {@link dev.kiln.metric.Loss}, {@link dev.kiln.metric.CustomMetric},
 * {@link dev.kiln.metric.CompositeEvalMetric}) and the registry {@link dev.kiln.metric.Metrics}.
 *
 * <p>Metrics compute in double precision with MXNet's formulas, so values agree with MXNet's
 * (float32 numpy) to about 1e-7 relative. CPU predictions are copied to the host ({@link
 * dev.kiln.metric.HostTensor}). GPU predictions are reduced on the GPU, to one float64 sum per
 * batch kept there until the metric is read, by Accuracy, TopKAccuracy, CrossEntropy,
 * NegativeLogLikelihood, Perplexity, MSE, MAE, RMSE and Loss; so training on a GPU copies no
 * outputs to the host and does not wait for the device between batches (see {@link
 * dev.kiln.metric.EvalMetric}). Metrics keep no reference to the arrays they are given; the only
 * native memory they hold is those unread device sums. None is thread-safe.
 *
 * <p>Where MXNet 1.9 behaves unreasonably, Kiln differs (each is tested):
 * <ul>
 *   <li>{@code F1}, {@code MCC} and {@code PearsonCorrelation} record {@code average} in {@code
 *       getConfig()} (MXNet drops it, so a round trip turns micro into macro); {@code Perplexity}
 *       also records {@code axis}.
 *   <li>{@code TopKAccuracy}'s config records the name given to the constructor, not the
 *       decorated {@code top_k_accuracy_5} (MXNet's round trip appends the suffix again).
 *   <li>{@code TopKAccuracy}: 1-D predictions are compared as class indices and counted in the
 *       global statistics too (MXNet compares {@code argpartition} positions and skips the
 *       global sum); {@code top_k} of at least the class count counts every in-range label
 *       (numpy's {@code argpartition} fails); ties at the k-th score go to the lower index.
 *   <li>{@code PearsonCorrelation(average="micro")} keeps separate global accumulators and
 *       {@code resetLocal()} clears the local ones (MXNet reports a global value of 0 and does
 *       not clear its streaming state on {@code reset_local}).
 *   <li>{@code F1}/{@code MCC} require 2-D predictions and a label with one value per row
 *       (MXNet broadcasts an (N, 1) label against N predictions into an N×N count).
 *   <li>{@code CrossEntropy}/{@code NegativeLogLikelihood}/{@code PCC} reject negative or
 *       out-of-range class indices (numpy wraps negative indices); {@code Perplexity} checks the
 *       label count against the class axis it picks from (MXNet checks the last axis).
 *   <li>{@code F1}, {@code MCC} and {@code PearsonCorrelation} reject an {@code average} other
 *       than {@code macro}/{@code micro} (MXNet treats anything else as micro).
 *   <li>Errors are {@link java.lang.IllegalArgumentException} where MXNet raises ValueError,
 *       TypeError or AssertionError; {@code CompositeEvalMetric.getMetric} throws for a bad index
 *       (MXNet returns the ValueError object).
 * </ul>
 */
package dev.kiln.metric;
