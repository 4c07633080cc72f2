package dev.kiln.io;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;

import java.util.List;
import java.util.NoSuchElementException;
import java.util.function.Consumer;

/**
 * The bookkeeping shared by Kiln's iterators whose data and label descriptions are fixed at
 * construction ({@link MNISTIter}, {@link CSVIter}, {@link NDArrayIter}, {@link
 * PrefetchingIter}): {@link #provideData()}/{@link #provideLabel()}, set once by the subclass
 * constructor with {@link #describe}, and the closed flag behind {@link #checkOpen()}. Messages
 * name the concrete class.
 */
abstract class FixedDescIter extends DataIter {
    private List<DataDesc> provideData;
    private List<DataDesc> provideLabel;
    private boolean closed;

    /** Sets what {@link #provideData()} and {@link #provideLabel()} return; the constructor calls it once. */
    final void describe(List<DataDesc> provideData, List<DataDesc> provideLabel) {
        this.provideData = provideData;
        this.provideLabel = provideLabel;
    }

    @Override
    public List<DataDesc> provideData() {
        return provideData;
    }

    @Override
    public List<DataDesc> provideLabel() {
        return provideLabel;
    }

    /** Marks the iterator closed; true only for the first call, when the subclass frees what it holds. */
    final boolean markClosed() {
        if (closed) {
            return false;
        }
        closed = true;
        return true;
    }

    /** Throws {@link IllegalStateException} ("MNISTIter is closed") once {@link #markClosed()} ran. */
    final void checkOpen() {
        if (closed) {
            throw new IllegalStateException(getClass().getSimpleName() + " is closed");
        }
    }

    /** The exception {@link #next()} throws at the end of an epoch. */
    final NoSuchElementException endOfEpoch() {
        return new NoSuchElementException(getClass().getSimpleName() + ": end of epoch (call reset())");
    }

    /**
     * A batch of one new cpu(0) data array and one new cpu(0) label array, shaped and typed as
     * the single entries of {@link #provideData()} and {@link #provideLabel()} and filled by the
     * callbacks; when anything fails, the arrays made so far are closed.
     */
    final DataBatch hostBatch(Consumer<NDArray> fillData, Consumer<NDArray> fillLabel, int pad, long[] index) {
        DataDesc dd = provideData.get(0);
        DataDesc ld = provideLabel.get(0);
        NDArray d = filled(new Shape(dd.shape()), dd.dtype(), Context.cpu(), fillData);
        NDArray l;
        try {
            l = filled(new Shape(ld.shape()), ld.dtype(), Context.cpu(), fillLabel);
        } catch (RuntimeException e) {
            d.close();
            throw e;
        }
        return new DataBatch(List.of(d), List.of(l), pad, index, null, provideData, provideLabel);
    }

    /**
     * A new array filled by {@code fill} and detached from any scope (the caller owns it); it is
     * closed when filling fails.
     */
    static NDArray filled(Shape shape, DType dtype, Context ctx, Consumer<NDArray> fill) {
        NDArray a = NDArray.zeros(shape, dtype, ctx);
        try {
            fill.accept(a);
        } catch (RuntimeException e) {
            a.close();
            throw e;
        }
        return a.detach();
    }
}
