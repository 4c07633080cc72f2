package dev.kiln.io;

import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * A source of {@link DataBatch}es, MXNet's {@code DataIter} protocol: iterate the batches of one
 * epoch, then {@link #reset()} to start the next.
 *
 * <pre>{@code
 * try (DataIter it = NDArrayIter.builder().setData(x).optLabel(y).setBatchSize(32).build()) {
 *     for (int epoch = 0; epoch < 10; epoch++) {
 *         for (DataBatch batch : it) {          // the rest of the current epoch
 *             try (batch) {
 *                 ...
 *             }
 *         }
 *         it.reset();
 *     }
 * }
 * }</pre>
 *
 * <p>Protocol: {@link #hasNext()} tells whether the current epoch has another batch (it may read
 * ahead, but never allocates native memory and may be called any number of times);
 * {@link #next()} returns it or throws {@link NoSuchElementException} at the end of the epoch;
 * {@link #reset()} starts the next epoch. {@link #iterator()} returns the iterator itself, so a
 * for-each loop walks the <i>remaining</i> batches of the current epoch (as Python's
 * {@code for batch in it}); it does not reset.
 *
 * <p>Ownership: <b>every {@link DataBatch} returned by {@link #next()} is a new object holding
 * new arrays that belong to no {@link dev.kiln.ndarray.NDScope}; the caller closes it.</b> The
 * iterator keeps no reference to batches it returned. {@link #close()} frees whatever the
 * iterator itself holds (prefetched batches, threads, files); closing is idempotent.
 *
 * <p>Thread-safety: an iterator is used by one thread at a time (wrap it in a
 * {@link PrefetchingIter} to produce batches on a background thread).
 */
public abstract class DataIter implements Iterator<DataBatch>, Iterable<DataBatch>, AutoCloseable {
    /** Creates an iterator. */
    protected DataIter() {}

    /** Whether the current epoch has another batch. Allocates no native memory. */
    @Override
    public abstract boolean hasNext();

    /**
     * The next batch of the current epoch, a new object owning new arrays (the caller closes it).
     *
     * @throws NoSuchElementException at the end of the epoch
     */
    @Override
    public abstract DataBatch next();

    /** Starts the next epoch (what exactly "next" means depends on the iterator, as in MXNet). */
    public abstract void reset();

    /** Number of examples per batch. */
    public abstract int batchSize();

    /** Name, shape (with the batch size), dtype and layout of each data array of a batch. */
    public abstract List<DataDesc> provideData();

    /** Descriptions of the label arrays of a batch; empty when the iterator has no labels. */
    public abstract List<DataDesc> provideLabel();

    /** The default bucket key for bucketing modules; null for iterators without buckets. */
    public Object defaultBucketKey() {
        return null;
    }

    /** This iterator itself: a for-each loop consumes the rest of the current epoch. */
    @Override
    public Iterator<DataBatch> iterator() {
        return this;
    }

    /** Frees what the iterator holds; the default holds nothing. Idempotent. */
    @Override
    public void close() {}
}
