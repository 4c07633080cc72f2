package dev.kiln.io;

import java.util.List;
import java.util.NoSuchElementException;
import java.util.Objects;

/**
 * Presents exactly {@code size} batches per epoch from another iterator, MXNet's
 * {@code mx.io.ResizeIter}: when the wrapped iterator ends mid-epoch it is reset and iteration
 * continues; {@link #reset()} restarts the count and, when {@code resetInternal} (the default),
 * resets the wrapped iterator too.
 *
 * <p>Ownership: the ResizeIter owns the wrapped iterator and closes it in {@link #close()}; the
 * batches are the wrapped iterator's, handed to the caller (who closes them).
 * Thread-safety: one thread at a time.
 */
public final class ResizeIter extends DataIter {
    private final DataIter inner;
    private final int size;
    private final boolean resetInternal;
    private int cur;

    /** Resizes {@code inner} to {@code size} batches per epoch, resetting it on {@link #reset()}. */
    public ResizeIter(DataIter inner, int size) {
        this(inner, size, true);
    }

    /**
     * Resizes {@code inner} to {@code size} batches per epoch.
     *
     * @param resetInternal whether {@link #reset()} also resets {@code inner}
     */
    public ResizeIter(DataIter inner, int size, boolean resetInternal) {
        this.inner = Objects.requireNonNull(inner, "ResizeIter data_iter");
        if (size < 0) {
            throw new IllegalArgumentException("ResizeIter size must be >= 0, got " + size);
        }
        this.size = size;
        this.resetInternal = resetInternal;
    }

    /**
     * @throws IllegalStateException when the wrapped iterator has no batch even right after a
     *                               reset (it can never fill an epoch)
     */
    @Override
    public boolean hasNext() {
        if (cur >= size) {
            return false;
        }
        if (!inner.hasNext()) {
            inner.reset();
            if (!inner.hasNext()) {
                throw new IllegalStateException("ResizeIter: the wrapped iterator has no batch even right after reset()");
            }
        }
        return true;
    }

    @Override
    public DataBatch next() {
        if (!hasNext()) {
            throw new NoSuchElementException("ResizeIter: " + size + " batches served (call reset())");
        }
        DataBatch b = inner.next();
        cur++;
        return b;
    }

    @Override
    public void reset() {
        cur = 0;
        if (resetInternal) {
            inner.reset();
        }
    }

    /** Batches per epoch. */
    public int size() {
        return size;
    }

    @Override
    public int batchSize() {
        return inner.batchSize();
    }

    @Override
    public List<DataDesc> provideData() {
        return inner.provideData();
    }

    @Override
    public List<DataDesc> provideLabel() {
        return inner.provideLabel();
    }

    @Override
    public Object defaultBucketKey() {
        return inner.defaultBucketKey();
    }

    /** Closes the wrapped iterator. Idempotent as far as the wrapped iterator's close is. */
    @Override
    public void close() {
        inner.close();
    }
}
