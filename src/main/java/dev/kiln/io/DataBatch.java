package dev.kiln.io;

import dev.kiln.ndarray.NDArray;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * One batch of examples, MXNet's {@code DataBatch}: the data arrays, the label arrays, the number
 * of filler examples at the end ({@link #pad()}), optional example ids, bucket key and input
 * descriptions.
 *
 * <p>Ownership: <b>a batch owns its arrays.</b> {@link #close()} closes every data and label
 * array (idempotent). Batches returned by a {@link DataIter} hold new arrays that belong to no
 * {@link dev.kiln.ndarray.NDScope}; the caller closes the batch, typically with
 * try-with-resources. Whoever builds a batch from existing arrays hands them over to it.
 *
 * <p>Thread-safety: the lists are immutable; a batch may be read from several threads, but must
 * be closed once, by one of them, after every reader is done.
 */
public final class DataBatch implements AutoCloseable {
    private final List<NDArray> data;
    private final List<NDArray> label;
    private final int pad;
    private final long[] index;
    private final Object bucketKey;
    private final List<DataDesc> provideData;
    private final List<DataDesc> provideLabel;
    private boolean closed;

    /**
     * A batch.
     *
     * @param data         the data arrays (not null; taken over by the batch)
     * @param label        the label arrays; null means none (taken over by the batch)
     * @param pad          number of filler examples at the end (>= 0)
     * @param index        example ids, or null
     * @param bucketKey    bucket key for bucketing modules, or null
     * @param provideData  descriptions of {@code data}, or null
     * @param provideLabel descriptions of {@code label}, or null
     */
    public DataBatch(List<NDArray> data, List<NDArray> label, int pad, long[] index, Object bucketKey,
                     List<DataDesc> provideData, List<DataDesc> provideLabel) {
        Objects.requireNonNull(data, "DataBatch data list");
        if (pad < 0) {
            throw new IllegalArgumentException("DataBatch pad must be >= 0, got " + pad);
        }
        this.data = Collections.unmodifiableList(new ArrayList<>(data));
        this.label = label == null ? List.of() : Collections.unmodifiableList(new ArrayList<>(label));
        for (NDArray a : this.data) {
            Objects.requireNonNull(a, "DataBatch data array");
        }
        for (NDArray a : this.label) {
            Objects.requireNonNull(a, "DataBatch label array");
        }
        this.pad = pad;
        this.index = index == null ? null : index.clone();
        this.bucketKey = bucketKey;
        this.provideData = provideData == null ? null : List.copyOf(provideData);
        this.provideLabel = provideLabel == null ? null : List.copyOf(provideLabel);
    }

    /** A batch with pad 0 and no index, bucket key or descriptions. */
    public DataBatch(List<NDArray> data, List<NDArray> label) {
        this(data, label, 0, null, null, null, null);
    }

    /** The data arrays (unmodifiable; owned by this batch). */
    public List<NDArray> data() {
        return data;
    }

    /** The label arrays (unmodifiable, never null, may be empty; owned by this batch). */
    public List<NDArray> label() {
        return label;
    }

    /** Number of filler examples at the end of the batch (predictions for them are dropped). */
    public int pad() {
        return pad;
    }

    /** A copy of the example ids, or null when the iterator does not provide them. */
    public long[] index() {
        return index == null ? null : index.clone();
    }

    /** The bucket key, or null. */
    public Object bucketKey() {
        return bucketKey;
    }

    /** Descriptions of the data arrays, or null when the producer did not attach them. */
    public List<DataDesc> provideData() {
        return provideData;
    }

    /** Descriptions of the label arrays, or null when the producer did not attach them. */
    public List<DataDesc> provideLabel() {
        return provideLabel;
    }

    /** True once {@link #close()} ran. */
    public boolean isClosed() {
        return closed;
    }

    /** Closes every data and label array. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        closeAll(Stream.concat(data.stream(), label.stream()).toList(), NDArray::close);
    }

    /**
     * Closes every item in order, also after a failure; the first {@link RuntimeException} is
     * rethrown at the end with the later ones added as suppressed.
     */
    static <T> void closeAll(List<T> items, Consumer<? super T> close) {
        RuntimeException first = null;
        for (T item : items) {
            try {
                close.accept(item);
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /** MXNet's {@code str(batch)}: {@code DataBatch: data shapes: [(2, 3)] label shapes: None}. */
    @Override
    public String toString() {
        return "DataBatch: data shapes: " + shapes(data) + " label shapes: " + (label.isEmpty() ? "None" : shapes(label));
    }

    private static String shapes(List<NDArray> arrays) {
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < arrays.size(); i++) {
            if (i > 0) {
                b.append(", ");
            }
            b.append(DataDesc.shapeString(arrays.get(i).shape().dims()));
        }
        return b.append(']').toString();
    }
}
