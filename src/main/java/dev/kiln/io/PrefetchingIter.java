package dev.kiln.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Reads one or more iterators ahead on background threads, MXNet's {@code mx.io.PrefetchingIter}.
 *
 * <pre>{@code
 * try (PrefetchingIter it = new PrefetchingIter(CSVIter.builder()...build())) {
 *     for (DataBatch b : it) { try (b) { ... } }   // the next batch is read while this one trains
 * }
 * }</pre>
 *
 * <p>Each wrapped iterator has its own daemon thread that keeps one batch ready. A batch of the
 * PrefetchingIter joins the wrapped iterators' batches: their data lists concatenated, their
 * label lists concatenated, {@code pad}, {@code index} and bucket key taken from the first (all
 * pads must agree). {@code renameData}/{@code renameLabel} hold one {@code {old: new}} map per
 * wrapped iterator, applied to {@link #provideData()}/{@link #provideLabel()} (names not in a
 * map are kept). {@link #batchSize()} is the first iterator's. All iterators must end together.
 *
 * <p>Errors: an exception thrown by a wrapped iterator on its thread is rethrown, same object,
 * by {@link #hasNext()}/{@link #next()} on the caller's thread (again on every call until
 * {@link #reset()}). Iterators that end at different batches raise
 * {@link IllegalStateException} ("Number of entry mismatches between iterators").
 *
 * <p>Ownership: the PrefetchingIter owns the wrapped iterators (do not use them directly any
 * more) and closes them in {@link #close()}, which first stops the threads (waiting for a read
 * in progress to finish) and closes any batch read ahead but not handed out. Batches returned by
 * {@link #next()} belong to the caller. {@link #provideData()}/{@link #provideLabel()} are fixed
 * at construction.
 *
 * <p>Thread-safety: one consumer thread at a time; the background threads touch only their own
 * wrapped iterator, and never while {@link #reset()} resets it.
 */
public final class PrefetchingIter extends FixedDescIter {
    private static final AtomicInteger IDS = new AtomicInteger();
    private static final Object END = new Object();

    private final List<DataIter> iters;
    private final Worker[] workers;

    /** Prefetches one iterator. */
    public PrefetchingIter(DataIter iter) {
        this(List.of(iter), null, null);
    }

    /** Prefetches several iterators and joins their batches. */
    public PrefetchingIter(List<DataIter> iters) {
        this(iters, null, null);
    }

    /**
     * Prefetches several iterators and joins their batches, renaming their inputs.
     *
     * @param renameData  null, or one map {@code {old name: new name}} per iterator for provideData
     * @param renameLabel null, or one map per iterator for provideLabel
     */
    public PrefetchingIter(List<DataIter> iters, List<Map<String, String>> renameData, List<Map<String, String>> renameLabel) {
        Objects.requireNonNull(iters, "PrefetchingIter iters");
        if (iters.isEmpty()) {
            throw new IllegalArgumentException("PrefetchingIter needs at least one iterator");
        }
        for (DataIter it : iters) {
            Objects.requireNonNull(it, "PrefetchingIter iterator");
        }
        checkRenames(renameData, iters.size(), "rename_data");
        checkRenames(renameLabel, iters.size(), "rename_label");
        this.iters = List.copyOf(iters);
        List<DataDesc> pd = new ArrayList<>();
        List<DataDesc> pl = new ArrayList<>();
        for (int i = 0; i < iters.size(); i++) {
            pd.addAll(rename(iters.get(i).provideData(), renameData == null ? null : renameData.get(i)));
            pl.addAll(rename(iters.get(i).provideLabel(), renameLabel == null ? null : renameLabel.get(i)));
        }
        describe(Collections.unmodifiableList(pd), Collections.unmodifiableList(pl));
        int id = IDS.incrementAndGet();
        this.workers = new Worker[iters.size()];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(this.iters.get(i), "kiln-prefetch-" + id + "-" + i);
        }
        for (Worker w : workers) {
            w.thread.start();
        }
    }

    private static void checkRenames(List<Map<String, String>> r, int n, String what) {
        if (r != null && r.size() != n) {
            throw new IllegalArgumentException("PrefetchingIter " + what + " has " + r.size() + " maps for " + n + " iterators");
        }
    }

    private static List<DataDesc> rename(List<DataDesc> descs, Map<String, String> map) {
        List<DataDesc> out = new ArrayList<>(descs.size());
        for (DataDesc d : descs) {
            String to = map == null ? null : map.get(d.name());
            out.add(to == null ? d : new DataDesc(to, d.shape(), d.dtype(), d.layout()));
        }
        return out;
    }

    /** A failure of a wrapped iterator, kept until reset. */
    private record Failure(Throwable error) {}

    /** One background reader. All fields are guarded by {@code lock}. */
    private static final class Worker implements Runnable {
        final DataIter iter;
        final Thread thread;
        final Object lock = new Object();
        Object slot;            // a DataBatch, END or a Failure; null while none is ready
        boolean fetching;       // inside iter.hasNext()/next()
        boolean active = true;  // may read; false after END/Failure and during reset
        boolean stop;

        Worker(DataIter iter, String name) {
            this.iter = iter;
            this.thread = new Thread(this, name);
            thread.setDaemon(true);
        }

        @Override
        public void run() {
            while (true) {
                synchronized (lock) {
                    while (!stop && (slot != null || !active)) {
                        try {
                            lock.wait();
                        } catch (InterruptedException e) {
                            // only close() stops a worker
                        }
                    }
                    if (stop) {
                        return;
                    }
                    fetching = true;
                }
                Object item;
                try {
                    item = iter.hasNext() ? iter.next() : END;
                } catch (Throwable t) {
                    item = new Failure(t);
                }
                synchronized (lock) {
                    fetching = false;
                    if (stop) {
                        discard(item);
                        lock.notifyAll();
                        return;
                    }
                    slot = item;
                    if (!(item instanceof DataBatch)) {
                        active = false;
                    }
                    lock.notifyAll();
                }
            }
        }

        /** Waits for the ready item without taking it. */
        Object peek() {
            synchronized (lock) {
                while (slot == null) {
                    if (stop || (!active && !fetching)) {
                        throw new IllegalStateException("PrefetchingIter: " + thread.getName() + " is not reading (closed, or a reset failed)");
                    }
                    try {
                        lock.wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IllegalStateException("PrefetchingIter: interrupted while waiting for " + thread.getName(), e);
                    }
                }
                return slot;
            }
        }

        /** Takes the ready batch and lets the thread read the next one. */
        DataBatch take() {
            synchronized (lock) {
                DataBatch b = (DataBatch) peek();
                slot = null;
                lock.notifyAll();
                return b;
            }
        }

        /** Stops reading, waits for a read in progress and closes what was read ahead. */
        void pause() {
            synchronized (lock) {
                active = false;
                while (fetching) {
                    try {
                        lock.wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IllegalStateException("PrefetchingIter: interrupted while waiting for " + thread.getName(), e);
                    }
                }
                discard(slot);
                slot = null;
            }
        }

        void resume() {
            synchronized (lock) {
                active = true;
                lock.notifyAll();
            }
        }

        /** Ends the thread (after a read in progress) and closes what was read ahead. */
        void stop() {
            synchronized (lock) {
                stop = true;
                lock.notifyAll();
            }
            boolean interrupted = false;
            while (thread.isAlive()) {
                try {
                    thread.join();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            synchronized (lock) {
                discard(slot);
                slot = null;
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }

        private static void discard(Object item) {
            if (item instanceof DataBatch b) {
                b.close();
            }
        }
    }

    private static RuntimeException rethrow(Failure f) {
        Throwable t = f.error();
        if (t instanceof RuntimeException re) {
            throw re;
        }
        if (t instanceof Error err) {
            throw err;
        }
        if (t instanceof IOException io) {
            throw new UncheckedIOException(io);
        }
        throw new IllegalStateException("PrefetchingIter: a wrapped iterator failed", t);
    }

    @Override
    public boolean hasNext() {
        checkOpen();
        Object first = null;
        for (int i = 0; i < workers.length; i++) {
            Object item = workers[i].peek();
            if (item instanceof Failure f) {
                throw rethrow(f);
            }
            if (i == 0) {
                first = item;
            } else if ((item == END) != (first == END)) {
                throw new IllegalStateException("Number of entry mismatches between iterators: iterator 0 "
                        + (first == END ? "ended" : "has a batch") + ", iterator " + i + (item == END ? " ended" : " has a batch"));
            }
        }
        return first != END;
    }

    @Override
    public DataBatch next() {
        if (!hasNext()) {
            throw endOfEpoch();
        }
        DataBatch[] parts = new DataBatch[workers.length];
        for (int i = 0; i < workers.length; i++) {
            parts[i] = workers[i].take();
        }
        for (int i = 1; i < parts.length; i++) {
            if (parts[i].pad() != parts[0].pad()) {
                String msg = "Number of entry mismatches between iterators: pad " + parts[0].pad() + " (iterator 0) vs pad "
                        + parts[i].pad() + " (iterator " + i + ")";
                for (DataBatch b : parts) {
                    b.close();
                }
                throw new IllegalStateException(msg);
            }
        }
        List<dev.kiln.ndarray.NDArray> data = new ArrayList<>();
        List<dev.kiln.ndarray.NDArray> label = new ArrayList<>();
        for (DataBatch b : parts) {
            data.addAll(b.data());
            label.addAll(b.label());
        }
        return new DataBatch(data, label, parts[0].pad(), parts[0].index(), parts[0].bucketKey(), provideData(), provideLabel());
    }

    /** Waits for reads in progress, closes batches read ahead, resets every wrapped iterator and reads on. */
    @Override
    public void reset() {
        checkOpen();
        for (Worker w : workers) {
            w.pause();
        }
        try {
            for (DataIter it : iters) {
                it.reset();
            }
        } finally {
            for (Worker w : workers) {
                w.resume();
            }
        }
    }

    @Override
    public int batchSize() {
        return iters.get(0).batchSize();
    }

    @Override
    public Object defaultBucketKey() {
        return iters.get(0).defaultBucketKey();
    }

    /** Stops the threads, closes batches read ahead and closes the wrapped iterators. Idempotent. */
    @Override
    public void close() {
        if (!markClosed()) {
            return;
        }
        for (Worker w : workers) {
            w.stop();
        }
        DataBatch.closeAll(iters, DataIter::close);
    }
}
