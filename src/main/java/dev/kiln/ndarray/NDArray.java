package dev.kiln.ndarray;

import dev.kiln.engine.Engine;
import dev.kiln.internal.Json;
import dev.kiln.internal.KilnNative;
import dev.kiln.internal.Native;

import java.io.IOException;
import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Logger;

/**
 * An n-dimensional array in native memory (CPU or GPU), MXNet's NDArray.
 *
 * <p>Ownership: an array owns a reference to its native storage; views ({@link #reshape},
 * {@link #slice}) share it, and the storage is freed when the last array and executor using it
 * let go. Close arrays with {@link #close()} (idempotent) or let an {@link NDScope} close them;
 * any use after close throws {@link IllegalStateException}. A {@link Cleaner} frees arrays that
 * were never closed, and logs a warning, as a backstop only.
 *
 * <p>Thread-safety: reading from several threads is safe; writing an array while another thread
 * reads or writes it is not synchronised.
 */
public final class NDArray implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(NDArray.class.getName());
    private static final Cleaner CLEANER = Cleaner.create();

    static {
        Engine.init();
    }

    private final State state;
    private final Shape shape;
    private final DType dtype;
    private final Context ctx;
    private String name;
    NDScope scope;

    /** Native handle holder shared with the cleaner (must not reference the NDArray). */
    private static final class State implements Runnable {
        final AtomicLong handle;
        volatile boolean explicitClose;

        State(long h) {
            handle = new AtomicLong(h);
        }

        @Override
        public void run() {
            long h = handle.getAndSet(0);
            if (h != 0) {
                if (!explicitClose) {
                    LOG.warning("an NDArray was garbage-collected without close(); freeing it (close arrays or use an NDScope)");
                }
                KilnNative.kiln_nd_free(h);
            }
        }
    }

    private NDArray(long handle) {
        long[] info = new long[4 + 32];
        Native.check(KilnNative.kiln_nd_info(handle, info, info.length), "NDArray");
        this.dtype = DType.fromId((int) info[0]);
        this.ctx = Context.of((int) info[1], (int) info[2]);
        long[] dims = new long[(int) info[3]];
        System.arraycopy(info, 4, dims, 0, dims.length);
        this.shape = new Shape(dims);
        this.state = new State(handle);
        CLEANER.register(this, state);
        NDScope.attachToCurrent(this);
    }

    /** Wraps a handle the native side just created; the new array owns it. Internal. */
    public static NDArray fromHandle(long handle) {
        return new NDArray(handle);
    }

    // ---- creation --------------------------------------------------------------------------

    /** A zero-filled array. */
    public static NDArray zeros(Shape shape, DType dtype, Context ctx) {
        long[] out = new long[1];
        long[] dims = shape.dims();
        Native.check(KilnNative.kiln_nd_create(ctx.devType(), ctx.devId(), dtype.id(), dims.length, dims, out),
                "NDArray.zeros" + shape + " " + dtype + " on " + ctx);
        return new NDArray(out[0]);
    }

    /** A zero-filled float32 array on cpu(0). */
    public static NDArray zeros(long... shape) {
        return zeros(new Shape(shape), DType.FLOAT32, Context.cpu());
    }

    /** An array filled with {@code value}. */
    public static NDArray full(Shape shape, double value, DType dtype, Context ctx) {
        return initOrClose(zeros(shape, dtype, ctx), a -> a.fill(value));
    }

    /** A float32 array on cpu(0) holding {@code data} (row-major) with the given shape. */
    public static NDArray create(float[] data, long... shape) {
        return initOrClose(zeros(new Shape(shape), DType.FLOAT32, Context.cpu()), a -> a.set(data));
    }

    /** A float64 array on cpu(0) holding {@code data} (row-major) with the given shape. */
    public static NDArray create(double[] data, long... shape) {
        return initOrClose(zeros(new Shape(shape), DType.FLOAT64, Context.cpu()), a -> a.set(data));
    }

    /** An array from raw little-endian bytes. */
    public static NDArray fromBytes(byte[] data, Shape shape, DType dtype, Context ctx) {
        return initOrClose(zeros(shape, dtype, ctx),
                a -> Native.check(KilnNative.kiln_nd_write(a.handle(), data, (long) data.length), "NDArray.fromBytes"));
    }

    /** Uniform samples in [low, high); the same seed gives the same values. */
    public static NDArray randomUniform(double low, double high, Shape shape, DType dtype, Context ctx, long seed) {
        return initOrClose(zeros(shape, dtype, ctx),
                a -> Native.check(KilnNative.kiln_nd_random(a.handle(), 0, low, high, seed), "randomUniform"));
    }

    /** Normal samples with the given mean and standard deviation; the same seed gives the same values. */
    public static NDArray randomNormal(double mean, double std, Shape shape, DType dtype, Context ctx, long seed) {
        return initOrClose(zeros(shape, dtype, ctx),
                a -> Native.check(KilnNative.kiln_nd_random(a.handle(), 1, mean, std, seed), "randomNormal"));
    }

    /** Runs {@code init} on a freshly created array; closes it (no leak) when init fails. */
    private static NDArray initOrClose(NDArray a, java.util.function.Consumer<NDArray> init) {
        try {
            init.accept(a);
            return a;
        } catch (RuntimeException e) {
            a.close();
            throw e;
        }
    }

    // ---- properties ------------------------------------------------------------------------

    /** The native handle; throws {@link IllegalStateException} after close. Internal. */
    public long handle() {
        long h = state.handle.get();
        if (h == 0) {
            throw new IllegalStateException("NDArray" + (name != null ? " '" + name + "'" : "") + " " + shape + " is closed");
        }
        return h;
    }

    /** The shape. */
    public Shape shape() {
        return shape;
    }

    /** The element type. */
    public DType dtype() {
        return dtype;
    }

    /** The device. */
    public Context context() {
        return ctx;
    }

    /** Number of elements. */
    public long size() {
        return shape.size();
    }

    /** An optional name used in error messages. */
    public String name() {
        return name;
    }

    /** Sets the name used in error messages and returns this array. */
    public NDArray setName(String name) {
        this.name = name;
        return this;
    }

    /** True once closed. */
    public boolean isClosed() {
        return state.handle.get() == 0;
    }

    // ---- data in and out -------------------------------------------------------------------

    private int checkedBytes() {
        long b = size() * dtype.bytes();
        if (b > Integer.MAX_VALUE - 16) {
            throw new IllegalStateException("array " + shape + " is too large for a Java array");
        }
        return (int) b;
    }

    /** Copies the elements out as float (converting from the array's type). */
    public float[] toFloatArray() {
        if (dtype == DType.FLOAT32) {
            float[] out = new float[checkedBytes() / 4];
            Native.check(KilnNative.kiln_nd_read(handle(), out, (long) out.length * 4), "toFloatArray");
            return out;
        }
        double[] d = toDoubleArray();
        float[] out = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            out[i] = (float) d[i];
        }
        return out;
    }

    /** Copies the elements out as double (converting from the array's type). */
    public double[] toDoubleArray() {
        if (dtype == DType.FLOAT64) {
            double[] out = new double[checkedBytes() / 8];
            Native.check(KilnNative.kiln_nd_read(handle(), out, (long) out.length * 8), "toDoubleArray");
            return out;
        }
        try (NDArray c = asType(DType.FLOAT64)) {
            return c.toDoubleArray();
        }
    }

    /** The raw little-endian bytes. */
    public byte[] toBytes() {
        byte[] out = new byte[checkedBytes()];
        Native.check(KilnNative.kiln_nd_read(handle(), out, (long) out.length), "toBytes");
        return out;
    }

    /**
     * Copies the raw little-endian bytes into {@code dst} (direct or heap) at its position, which
     * advances by the array's byte size.
     */
    public ByteBuffer copyTo(ByteBuffer dst) {
        long bytes = size() * dtype.bytes();
        if (dst.remaining() < bytes) {
            throw new IllegalArgumentException("buffer has " + dst.remaining() + " bytes left, array " + shape + " " + dtype + " needs " + bytes);
        }
        if (dst.isDirect()) {
            ByteBuffer view = dst.slice();
            view.limit((int) bytes);
            Native.check(KilnNative.kiln_nd_read(handle(), view, bytes), "copyTo(ByteBuffer)");
            dst.position(dst.position() + (int) bytes);
        } else {
            dst.put(toBytes());
        }
        return dst;
    }

    /** The single element of a one-element array. */
    public double scalar() {
        if (size() != 1) {
            throw new IllegalStateException("scalar() needs a one-element array, got " + shape);
        }
        return toDoubleArray()[0];
    }

    /** Overwrites the elements (row-major); the length must equal {@link #size()}. */
    public NDArray set(float[] data) {
        if (dtype != DType.FLOAT32) {
            try (NDArray tmp = zeros(shape, DType.FLOAT32, Context.cpu())) {
                tmp.set(data);
                tmp.copyTo(this);
            }
            return this;
        }
        checkLength(data.length);
        Native.check(KilnNative.kiln_nd_write(handle(), data, (long) data.length * 4), "set");
        return this;
    }

    /** Overwrites the elements (row-major); the length must equal {@link #size()}. */
    public NDArray set(double[] data) {
        if (dtype != DType.FLOAT64) {
            try (NDArray tmp = zeros(shape, DType.FLOAT64, Context.cpu())) {
                tmp.set(data);
                tmp.copyTo(this);
            }
            return this;
        }
        checkLength(data.length);
        Native.check(KilnNative.kiln_nd_write(handle(), data, (long) data.length * 8), "set");
        return this;
    }

    /** Overwrites the elements from a direct or heap buffer of raw little-endian bytes. */
    public NDArray set(ByteBuffer data) {
        long bytes = size() * dtype.bytes();
        if (data.remaining() != bytes) {
            throw new IllegalArgumentException("buffer has " + data.remaining() + " bytes, array " + shape + " " + dtype + " needs " + bytes);
        }
        if (data.isDirect()) {
            Native.check(KilnNative.kiln_nd_write(handle(), data.slice(), bytes), "set");
        } else {
            byte[] b = new byte[(int) bytes];
            data.duplicate().get(b);
            Native.check(KilnNative.kiln_nd_write(handle(), b, bytes), "set");
        }
        return this;
    }

    private void checkLength(int n) {
        if (n != size()) {
            throw new IllegalArgumentException("array " + (name != null ? "'" + name + "' " : "") + shape + " has " + size()
                    + " elements, " + n + " given");
        }
    }

    /** Sets every element to {@code value}. */
    public NDArray fill(double value) {
        Native.check(KilnNative.kiln_nd_fill(handle(), value), "fill");
        return this;
    }

    /**
     * Copies this array into {@code dst} (same number of elements, any contexts). A copy that also
     * converts the type runs the conversion on the CPU, staging device arrays through host memory.
     */
    public NDArray copyTo(NDArray dst) {
        Native.check(KilnNative.kiln_nd_copy_to(handle(), dst.handle()), "copyTo " + shape + " -> " + dst.shape);
        return dst;
    }

    /** A new array with the same contents on {@code ctx}. */
    public NDArray copyTo(Context target) {
        return initOrClose(zeros(shape, dtype, target), this::copyTo);
    }

    /** A new array with the same contents. */
    public NDArray copy() {
        return copyTo(ctx);
    }

    /**
     * A new array with the contents converted to {@code type}, on this array's context. On a GPU
     * the {@code Cast} operator converts it there (no host round trip, no wait for the device).
     */
    public NDArray asType(DType type) {
        if (ctx.isGpu()) {
            return invoke("Cast", Map.of("dtype", type.mxName()), this).get(0);
        }
        return initOrClose(zeros(shape, type, ctx), this::copyTo);
    }

    /** A view with another shape of the same size (shares storage). */
    public NDArray reshape(long... newShape) {
        long[] out = new long[1];
        Native.check(KilnNative.kiln_nd_reshape(handle(), newShape.length, newShape, out), "reshape " + shape);
        return new NDArray(out[0]);
    }

    /** A view of rows [begin, end) along axis 0 (shares storage). */
    public NDArray slice(long begin, long end) {
        long[] out = new long[1];
        Native.check(KilnNative.kiln_nd_slice(handle(), begin, end, out), "slice " + shape);
        return new NDArray(out[0]);
    }

    // ---- operators -------------------------------------------------------------------------

    /**
     * Runs a registered operator imperatively and returns its visible outputs (new arrays owned
     * by the caller or the current scope). {@code attrs} uses MXNet's parameter names; as in
     * MXNet, {@code num_args} of the variable-input operators (Concat, ElementWiseSum/add_n, stack,
     * UpSampling, khatri_rao, Crop) defaults to the number of inputs.
     */
    public static List<NDArray> invoke(String op, Map<String, ?> attrs, NDArray... inputs) {
        long[] out = call(op, attrs, new long[16], inputs);
        int n = out.length;
        List<NDArray> res = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            res.add(new NDArray(out[i]));
        }
        return res;
    }

    /**
     * {@code out = parts[0] + parts[1] + ...}, summed in order in {@code out}'s context and dtype.
     * A part on another device or of another dtype is first copied into one scratch array on
     * {@code out}'s context (created for this call and closed before it returns). The cross-device
     * reduce behind {@code KVStore.push} and the data-parallel parameter average.
     *
     * @throws IllegalArgumentException if {@code parts} is empty or a shape differs from {@code out}'s
     */
    public static void sumInto(java.util.List<NDArray> parts, NDArray out) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("sumInto: no arrays to sum");
        }
        NDArray scratch = null;
        try {
            parts.get(0).copyTo(out);
            for (int d = 1; d < parts.size(); d++) {
                NDArray p = parts.get(d);
                if (!p.shape().equals(out.shape())) {
                    throw new IllegalArgumentException("sumInto: part " + d + " has shape " + p.shape() + ", out has "
                            + out.shape());
                }
                NDArray add = p;
                if (!p.context().equals(out.context()) || p.dtype() != out.dtype()) {
                    if (scratch == null) {
                        scratch = zeros(out.shape(), out.dtype(), out.context()).detach();
                    }
                    p.copyTo(scratch);
                    add = scratch;
                }
                invokeInto("elemwise_add", Map.of(), out, out, add);
            }
        } finally {
            if (scratch != null) {
                scratch.close();
            }
        }
    }

    /** Runs an operator writing its first output into {@code out} (e.g. an optimizer update in place). */
    public static void invokeInto(String op, Map<String, ?> attrs, NDArray out, NDArray... inputs) {
        long[] outs = new long[16];
        outs[0] = out.handle();
        outs = call(op, attrs, outs, inputs);
        for (int i = 1; i < outs.length; i++) {
            KilnNative.kiln_nd_free(outs[i]);
        }
    }

    /**
     * One native op call; nonzero slots of {@code outs} are written in place, zero ones get new
     * handles. Returns the visible outputs' handles (a longer array when the op has more visible
     * outputs than {@code outs} has slots).
     */
    private static long[] call(String op, Map<String, ?> attrs, long[] outs, NDArray... inputs) {
        long[] in = new long[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            in[i] = inputs[i].handle();
        }
        Map<String, String> a = new LinkedHashMap<>();
        if (attrs != null) {
            attrs.forEach((k, v) -> a.put(k, attrValue(v)));
        }
        int[] n = new int[1];
        String json = Json.write(dev.kiln.op.Ops.withInputCount(op, a, inputs.length));
        Native.check(KilnNative.kiln_op_invoke(op, json, in.length, in, outs.length, outs, n), null);
        if (n[0] > outs.length) {  // more visible outputs than slots: nothing ran; again with enough (c_api.h)
            outs = java.util.Arrays.copyOf(outs, n[0]);
            Native.check(KilnNative.kiln_op_invoke(op, json, in.length, in, outs.length, outs, n), null);
        }
        return java.util.Arrays.copyOf(outs, n[0]);
    }

    static String attrValue(Object v) {
        if (v instanceof Boolean b) {
            return b ? "True" : "False";
        }
        if (v instanceof long[] t) {
            StringBuilder s = new StringBuilder("(");
            for (int i = 0; i < t.length; i++) {
                s.append(i > 0 ? ", " : "").append(t[i]);
            }
            return s.append(t.length == 1 ? ",)" : ")").toString();
        }
        if (v instanceof int[] t) {
            long[] l = new long[t.length];
            for (int i = 0; i < t.length; i++) {
                l[i] = t[i];
            }
            return attrValue(l);
        }
        return String.valueOf(v);
    }

    private NDArray unary(String op) {
        return invoke(op, Map.of(), this).get(0);
    }

    /** {@code sameShapeOp} when the shapes are equal, else the NumPy-broadcasting {@code broadcastOp}. */
    private NDArray binary(String sameShapeOp, String broadcastOp, NDArray other) {
        return invoke(shape.equals(other.shape) ? sameShapeOp : broadcastOp, Map.of(), this, other).get(0);
    }

    private NDArray scalarOp(String op, double s) {
        return invoke(op, Map.of("scalar", Double.toString(s)), this).get(0);
    }

    /** Elementwise sum (NumPy broadcasting when shapes differ). */
    public NDArray add(NDArray o) {
        return binary("elemwise_add", "broadcast_add", o);
    }

    /** Elementwise difference (broadcasting). */
    public NDArray sub(NDArray o) {
        return binary("elemwise_sub", "broadcast_sub", o);
    }

    /** Elementwise product (broadcasting). */
    public NDArray mul(NDArray o) {
        return binary("elemwise_mul", "broadcast_mul", o);
    }

    /** Elementwise quotient (broadcasting). */
    public NDArray div(NDArray o) {
        return binary("elemwise_div", "broadcast_div", o);
    }

    /** Elementwise maximum (broadcasting). */
    public NDArray maximum(NDArray o) {
        return binary("_maximum", "broadcast_maximum", o);
    }

    /** Elementwise minimum (broadcasting). */
    public NDArray minimum(NDArray o) {
        return binary("_minimum", "broadcast_minimum", o);
    }

    /** Elementwise power (broadcasting). */
    public NDArray pow(NDArray o) {
        return binary("_power", "broadcast_power", o);
    }

    /** {@code this + s}. */
    public NDArray add(double s) {
        return scalarOp("_plus_scalar", s);
    }

    /** {@code this - s}. */
    public NDArray sub(double s) {
        return scalarOp("_minus_scalar", s);
    }

    /** {@code s - this}. */
    public NDArray rsub(double s) {
        return scalarOp("_rminus_scalar", s);
    }

    /** {@code this * s}. */
    public NDArray mul(double s) {
        return scalarOp("_mul_scalar", s);
    }

    /** {@code this / s}. */
    public NDArray div(double s) {
        return scalarOp("_div_scalar", s);
    }

    /** {@code s / this}. */
    public NDArray rdiv(double s) {
        return scalarOp("_rdiv_scalar", s);
    }

    /** {@code this ^ s}. */
    public NDArray pow(double s) {
        return scalarOp("_power_scalar", s);
    }

    /** {@code -this}. */
    public NDArray neg() {
        return unary("negative");
    }

    /** {@code e^this}. */
    public NDArray exp() {
        return unary("exp");
    }

    /** Natural logarithm. */
    public NDArray log() {
        return unary("log");
    }

    /** Square root. */
    public NDArray sqrt() {
        return unary("sqrt");
    }

    /** Square. */
    public NDArray square() {
        return unary("square");
    }

    /** Absolute value. */
    public NDArray abs() {
        return unary("abs");
    }

    /** Logistic sigmoid. */
    public NDArray sigmoid() {
        return unary("sigmoid");
    }

    /** max(this, 0). */
    public NDArray relu() {
        return unary("relu");
    }

    /** Hyperbolic tangent. */
    public NDArray tanh() {
        return unary("tanh");
    }

    /** Sine (radians). */
    public NDArray sin() {
        return unary("sin");
    }

    /** Cosine (radians). */
    public NDArray cos() {
        return unary("cos");
    }

    /** 1 / this. */
    public NDArray reciprocal() {
        return unary("reciprocal");
    }

    /** 1 / sqrt(this). */
    public NDArray rsqrt() {
        return unary("rsqrt");
    }

    /** Gauss error function. */
    public NDArray erf() {
        return unary("erf");
    }

    /** Largest integer <= this. */
    public NDArray floor() {
        return unary("floor");
    }

    /** Smallest integer >= this. */
    public NDArray ceil() {
        return unary("ceil");
    }

    /** Nearest integer, halves away from zero. */
    public NDArray round() {
        return unary("round");
    }

    /** -1, 0 or 1 (0 for NaN, as MXNet). */
    public NDArray sign() {
        return unary("sign");
    }

    /** 1 where {@code this == o}, else 0, in this array's dtype (broadcasting). */
    public NDArray eq(NDArray o) {
        return binary("_equal", "broadcast_equal", o);
    }

    /** 1 where {@code this == s}, else 0, in this array's dtype. */
    public NDArray eq(double s) {
        return scalarOp("_equal_scalar", s);
    }

    /** 1 where {@code this != o}, else 0, in this array's dtype (broadcasting). */
    public NDArray ne(NDArray o) {
        return binary("_not_equal", "broadcast_not_equal", o);
    }

    /** 1 where {@code this != s}, else 0, in this array's dtype. */
    public NDArray ne(double s) {
        return scalarOp("_not_equal_scalar", s);
    }

    /** 1 where {@code this > o}, else 0, in this array's dtype (broadcasting). */
    public NDArray gt(NDArray o) {
        return binary("_greater", "broadcast_greater", o);
    }

    /** 1 where {@code this > s}, else 0, in this array's dtype. */
    public NDArray gt(double s) {
        return scalarOp("_greater_scalar", s);
    }

    /** 1 where {@code this >= o}, else 0, in this array's dtype (broadcasting). */
    public NDArray ge(NDArray o) {
        return binary("_greater_equal", "broadcast_greater_equal", o);
    }

    /** 1 where {@code this >= s}, else 0, in this array's dtype. */
    public NDArray ge(double s) {
        return scalarOp("_greater_equal_scalar", s);
    }

    /** 1 where {@code this < o}, else 0, in this array's dtype (broadcasting). */
    public NDArray lt(NDArray o) {
        return binary("_lesser", "broadcast_lesser", o);
    }

    /** 1 where {@code this < s}, else 0, in this array's dtype. */
    public NDArray lt(double s) {
        return scalarOp("_lesser_scalar", s);
    }

    /** 1 where {@code this <= o}, else 0, in this array's dtype (broadcasting). */
    public NDArray le(NDArray o) {
        return binary("_lesser_equal", "broadcast_lesser_equal", o);
    }

    /** 1 where {@code this <= s}, else 0, in this array's dtype. */
    public NDArray le(double s) {
        return scalarOp("_lesser_equal_scalar", s);
    }

    /** Remainder with the sign of the divisor (Python's %), 0 where {@code o} is 0 (broadcasting). */
    public NDArray mod(NDArray o) {
        return binary("_mod", "broadcast_mod", o);
    }

    /** Remainder of {@code this / s} with the sign of s (Python's %); 0 when s is 0. */
    public NDArray mod(double s) {
        return scalarOp("_mod_scalar", s);
    }

    /** Values clipped to [min, max]. */
    public NDArray clip(double min, double max) {
        return invoke("clip", Map.of("a_min", Double.toString(min), "a_max", Double.toString(max)), this).get(0);
    }

    private NDArray reduce(String op, boolean keepDims, int... axes) {
        Map<String, Object> a = new LinkedHashMap<>();
        if (axes.length > 0) {
            a.put("axis", axes);
        }
        a.put("keepdims", keepDims);
        return invoke(op, a, this).get(0);
    }

    /** Sum over {@code axes} (all axes when none are given). */
    public NDArray sum(int... axes) {
        return reduce("sum", false, axes);
    }

    /** Mean over {@code axes} (all axes when none are given). */
    public NDArray mean(int... axes) {
        return reduce("mean", false, axes);
    }

    /** Maximum over {@code axes} (all axes when none are given). */
    public NDArray max(int... axes) {
        return reduce("max", false, axes);
    }

    /** Minimum over {@code axes} (all axes when none are given). */
    public NDArray min(int... axes) {
        return reduce("min", false, axes);
    }

    /** Matrix product (MXNet's {@code dot}). */
    public NDArray dot(NDArray o) {
        return invoke("dot", Map.of(), this, o).get(0);
    }

    /** Axes reversed (or permuted by {@code axes}). */
    public NDArray transpose(int... axes) {
        return invoke("transpose", axes.length == 0 ? Map.of() : Map.of("axes", axes), this).get(0);
    }

    /** Broadcast to {@code shape} (same rank; each dim of this array is 1 or the target's, 0 keeps a dim). */
    public NDArray broadcastTo(long... shape) {
        return invoke("broadcast_to", Map.of("shape", shape), this).get(0);
    }

    /** Without the size-1 dims named by {@code axes} (every size-1 dim when none are given). */
    public NDArray squeeze(int... axes) {
        return invoke("squeeze", axes.length == 0 ? Map.of() : Map.of("axis", axes), this).get(0);
    }

    /** Axes {@code dim1} and {@code dim2} exchanged (negative values count from the end). */
    public NDArray swapaxes(int dim1, int dim2) {
        return invoke("SwapAxis", Map.of("dim1", dim1, "dim2", dim2), this).get(0);
    }

    /** The elements in reverse order along {@code axes} (MXNet's {@code reverse}). */
    public NDArray flip(int... axes) {
        return invoke("reverse", Map.of("axis", axes), this).get(0);
    }

    // ---- files -----------------------------------------------------------------------------

    /** Saves named arrays in MXNet's {@code .params} format (atomically). */
    public static void save(Path file, Map<String, NDArray> arrays) throws IOException {
        List<ParamsFile.Entry> entries = new ArrayList<>();
        for (Map.Entry<String, NDArray> e : arrays.entrySet()) {
            entries.add(e.getValue().toEntry(e.getKey()));
        }
        ParamsFile.write(file, entries);
    }

    /** Saves an unnamed list of arrays in MXNet's {@code .params} format (atomically). */
    public static void save(Path file, List<NDArray> arrays) throws IOException {
        List<ParamsFile.Entry> entries = new ArrayList<>();
        for (NDArray a : arrays) {
            entries.add(a.toEntry(""));
        }
        ParamsFile.write(file, entries);
    }

    /**
     * Loads a {@code .params} file written by MXNet (any version) or Kiln as name -> array, in file
     * order (unnamed lists get keys "0", "1", ...). Arrays are created on cpu(0) and belong to the
     * caller (or the current scope).
     *
     * @throws IOException if the file cannot be read, is corrupt, or holds a none (empty) array
     */
    public static Map<String, NDArray> load(Path file) throws IOException {
        List<ParamsFile.Entry> entries = ParamsFile.read(file);
        for (int k = 0; k < entries.size(); k++) {  // before any native allocation
            if (entries.get(k).isNone()) {
                String key = entries.get(k).name().isEmpty() ? Integer.toString(k) : entries.get(k).name();
                throw new IOException(file + ": array '" + key + "' is MXNet's empty (none) array, which has no Kiln form");
            }
        }
        Map<String, NDArray> out = new LinkedHashMap<>();
        int i = 0;
        try {
            for (ParamsFile.Entry e : entries) {
                String key = e.name() == null || e.name().isEmpty() ? Integer.toString(i) : e.name();
                out.put(key, fromBytes(e.data(), new Shape(e.shape()), e.dtype(), Context.cpu()).setName(key));
                i++;
            }
        } catch (RuntimeException ex) {
            out.values().forEach(NDArray::close);
            throw ex;
        }
        return out;
    }

    private ParamsFile.Entry toEntry(String entryName) {
        return new ParamsFile.Entry(entryName, dtype, ctx.devType(), ctx.devId(), shape.dims(), toBytes());
    }

    // ---- lifecycle -------------------------------------------------------------------------

    /** Removes the array from its scope: the caller now owns it and must close it. */
    public NDArray detach() {
        if (scope != null) {
            scope.remove(this);
            scope = null;
        }
        return this;
    }

    /** Frees this handle (the storage stays alive while views or executors use it). Idempotent. */
    @Override
    public void close() {
        state.explicitClose = true;
        long h = state.handle.getAndSet(0);
        if (h != 0) {
            Native.check(KilnNative.kiln_nd_free(h), "NDArray.close");
        }
        if (scope != null) {
            scope.remove(this);
            scope = null;
        }
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("NDArray").append(shape).append(' ').append(dtype).append(" @").append(ctx);
        if (isClosed()) {
            return b.append(" (closed)").toString();
        }
        if (size() <= 20) {
            double[] d = toDoubleArray();
            b.append(' ').append(java.util.Arrays.toString(d));
        }
        return b.toString();
    }

    static ByteBuffer le(byte[] b) {
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    }
}
