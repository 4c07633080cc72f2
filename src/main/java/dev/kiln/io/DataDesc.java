package dev.kiln.io;

import dev.kiln.ndarray.DType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Name, shape, element type and layout of one input of a network, MXNet's {@code DataDesc}
 * ({@code python/mxnet/io/io.py}).
 *
 * <p>Like MXNet's namedtuple, <b>equality and hashing use only {@code (name, shape)}</b>: two
 * descriptions that differ only in dtype or layout are equal. The Module API relies on this when
 * it decides whether new input shapes need a reshape.
 *
 * <p>The layout tells which axis is the batch axis ({@link #batchAxis(String)}): the position of
 * {@code 'N'}, or -1 when there is none ("copy the whole array to every device").
 *
 * <p>Immutable and thread-safe; {@link #shape()} returns a copy.
 */
public final class DataDesc {
    /** MXNet's default layout. */
    public static final String DEFAULT_LAYOUT = "NCHW";

    private final String name;
    private final long[] shape;
    private final DType dtype;
    private final String layout;

    /** A description with dtype float32 and layout {@code "NCHW"} (batch axis 0). */
    public DataDesc(String name, long[] shape) {
        this(name, shape, DType.FLOAT32, DEFAULT_LAYOUT);
    }

    /**
     * A description.
     *
     * @param name   the input's name (not null)
     * @param shape  the shape including the batch axis (not null, no negative dimension)
     * @param dtype  the element type; null means float32
     * @param layout the layout string such as {@code "NCHW"} or {@code "TNC"}; null is kept as
     *               null and means batch axis 0 (as MXNet's {@code get_batch_axis(None)})
     */
    public DataDesc(String name, long[] shape, DType dtype, String layout) {
        this.name = Objects.requireNonNull(name, "DataDesc name");
        Objects.requireNonNull(shape, "DataDesc shape");
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("DataDesc '" + name + "': negative dimension in shape " + Arrays.toString(shape));
            }
        }
        this.shape = shape.clone();
        this.dtype = dtype == null ? DType.FLOAT32 : dtype;
        this.layout = layout;
    }

    /** The input's name. */
    public String name() {
        return name;
    }

    /** A copy of the shape. */
    public long[] shape() {
        return shape.clone();
    }

    /** The element type. */
    public DType dtype() {
        return dtype;
    }

    /** The layout string (may be null, which means batch axis 0). */
    public String layout() {
        return layout;
    }

    /**
     * MXNet's {@code DataDesc.get_batch_axis}: 0 for a null layout, otherwise the index of
     * {@code 'N'} in the layout, or -1 when the layout has no {@code 'N'}.
     */
    public static int batchAxis(String layout) {
        if (layout == null) {
            return 0;
        }
        return layout.indexOf('N');
    }

    /** The batch axis of this description's layout (see {@link #batchAxis(String)}). */
    public int batchAxis() {
        return batchAxis(layout);
    }

    /**
     * MXNet's {@code DataDesc.get_list}: one description per {@code (name, shape)} entry, in the
     * map's iteration order, with the dtype from {@code types} when it names the input (float32
     * otherwise) and the default layout.
     */
    public static List<DataDesc> list(Map<String, long[]> shapes, Map<String, DType> types) {
        List<DataDesc> out = new ArrayList<>(shapes.size());
        shapes.forEach((k, v) -> out.add(new DataDesc(k, v, types == null ? null : types.get(k), DEFAULT_LAYOUT)));
        return out;
    }

    /** Equal when the names and shapes are equal; dtype and layout are ignored (as in MXNet). */
    @Override
    public boolean equals(Object o) {
        return o instanceof DataDesc d && d.name.equals(name) && Arrays.equals(d.shape, shape);
    }

    @Override
    public int hashCode() {
        return 31 * name.hashCode() + Arrays.hashCode(shape);
    }

    /** MXNet's repr: {@code DataDesc[data,(2, 3),float32,NCHW]}. */
    @Override
    public String toString() {
        return "DataDesc[" + name + "," + shapeString(shape) + "," + dtype.mxName() + "," + layout + "]";
    }

    /** A shape written as a Python tuple: {@code (2, 3)}, {@code (10,)}, {@code ()}. */
    static String shapeString(long[] shape) {
        StringBuilder b = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            if (i > 0) {
                b.append(", ");
            }
            b.append(shape[i]);
        }
        if (shape.length == 1) {
            b.append(',');
        }
        return b.append(')').toString();
    }
}
