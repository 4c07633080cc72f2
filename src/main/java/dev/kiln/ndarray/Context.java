package dev.kiln.ndarray;

import java.util.Objects;

/**
 * A device: {@code cpu(i)} or {@code gpu(i)}. Device type numbers follow MXNet (1 = cpu, 2 = gpu),
 * as stored in {@code .params} files. Immutable and thread-safe.
 */
public final class Context {
    /** MXNet's device type number of the CPU. */
    public static final int CPU = 1;
    /** MXNet's device type number of CUDA GPUs. */
    public static final int GPU = 2;

    private final int devType;
    private final int devId;

    private Context(int devType, int devId) {
        if (devType != CPU && devType != GPU) {
            throw new IllegalArgumentException("device type must be 1 (cpu) or 2 (gpu), got " + devType);
        }
        if (devId < 0) {
            throw new IllegalArgumentException("device id must be >= 0, got " + devId);
        }
        this.devType = devType;
        this.devId = devId;
    }

    /** {@code cpu(0)}. */
    public static Context cpu() {
        return new Context(CPU, 0);
    }

    /** {@code cpu(id)}: CPU contexts share the host's memory; several of them split a batch. */
    public static Context cpu(int id) {
        return new Context(CPU, id);
    }

    /** {@code gpu(id)}; using it fails with a clear message when no such CUDA device exists. */
    public static Context gpu(int id) {
        return new Context(GPU, id);
    }

    /** The context with MXNet's device type number and id. */
    public static Context of(int devType, int devId) {
        return new Context(devType, devId);
    }

    /** MXNet's device type number (1 cpu, 2 gpu). */
    public int devType() {
        return devType;
    }

    /** Device index. */
    public int devId() {
        return devId;
    }

    /** True for {@code gpu(i)}. */
    public boolean isGpu() {
        return devType == GPU;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Context c && c.devType == devType && c.devId == devId;
    }

    @Override
    public int hashCode() {
        return Objects.hash(devType, devId);
    }

    @Override
    public String toString() {
        return (devType == CPU ? "cpu(" : "gpu(") + devId + ")";
    }
}
