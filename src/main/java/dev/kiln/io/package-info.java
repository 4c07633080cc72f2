/**
 * Data iterators, MXNet 1.x's {@code mx.io}: {@link dev.kiln.io.DataDesc},
 * {@link dev.kiln.io.DataBatch}, the {@link dev.kiln.io.DataIter} protocol and the iterators
 * {@link dev.kiln.io.NDArrayIter} (in-memory arrays), {@link dev.kiln.io.CSVIter} (CSV files),
 * {@link dev.kiln.io.MNISTIter} (idx files), {@link dev.kiln.io.ResizeIter} (fixed epoch length)
 * and {@link dev.kiln.io.PrefetchingIter} (background reading), plus {@link dev.kiln.io.Csv}
 * (tables with headers) and {@link dev.kiln.io.Mnist} (idx reader).
 *
 * <p><b>Ownership rule.</b> Every {@link dev.kiln.io.DataBatch} an iterator returns is a new
 * object owning new native arrays that belong to no {@link dev.kiln.ndarray.NDScope}; the
 * caller closes it ({@code try (batch) { ... }}). Iterators keep no reference to the batches they
 * return, copy (never borrow) the arrays they are built from, and free whatever they hold in
 * {@code close()}. Wrapping iterators ({@link dev.kiln.io.ResizeIter},
 * {@link dev.kiln.io.PrefetchingIter}) own and close the iterators they wrap.
 *
 * <p><b>Threads.</b> An iterator is used by one thread at a time; {@link dev.kiln.io.PrefetchingIter}
 * moves the reading to background threads.
 *
 * <p>Where Kiln differs from MXNet (stricter parsing, sane edge cases) is listed in
 * {@code docs/mxnet-differences.md}.
 */
package dev.kiln.io;
