package dev.kiln.optimizer;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.ParamsFile;
import dev.kiln.ndarray.Shape;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;

/**
 * One raw NDArray record of MXNet's list format (spec §7.2) without the list header: what an
 * NDArray's pickled {@code handle} bytearray holds (spec §7.4). The codec is {@link ParamsFile}'s;
 * this class only adds and strips the list framing. Internal.
 *
 * <p>Thread-safety: stateless.
 */
final class NDArrayRecord {
    private static final int LIST_HEADER = 24;
    private static final int LIST_TRAILER = 8;

    private NDArrayRecord() {}

    /**
     * The V2 record of an array (its real device is written as the record's context).
     *
     * @param a the array (not closed)
     * @return the record bytes
     */
    static byte[] encode(NDArray a) {
        ParamsFile.Entry e = new ParamsFile.Entry("", a.dtype(), a.context().devType(), a.context().devId(),
                a.shape().dims(), a.toBytes());
        byte[] list = ParamsFile.encode(List.of(e));
        return Arrays.copyOfRange(list, LIST_HEADER, list.length - LIST_TRAILER);
    }

    /**
     * Decodes a record (V2, V3, V1 or legacy; dense) into a new array on cpu(0), owned by the
     * caller (or the current scope).
     *
     * @param record the record bytes, exactly one record
     * @param what names the record in error messages
     * @return the array
     * @throws IllegalArgumentException for a malformed, sparse, "none" or trailing-bytes record
     */
    static NDArray decode(byte[] record, String what) {
        ByteBuffer b = ByteBuffer.allocate(LIST_HEADER + record.length + LIST_TRAILER).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(ParamsFile.LIST_MAGIC).putLong(0).putLong(1).put(record).putLong(0);
        ParamsFile.Entry e;
        try {
            e = ParamsFile.read(b.array()).get(0);
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException(what + ": invalid NDArray record: " + ex.getMessage(), ex);
        }
        if (e.isNone()) {
            throw new IllegalArgumentException(what + ": the NDArray record is an empty (none) array");
        }
        long expected = recordLength(record, e);
        if (expected != record.length) {
            throw new IllegalArgumentException(what + ": NDArray record of " + record.length + " bytes holds "
                    + (record.length - expected) + " bytes after the array data");
        }
        return NDArray.fromBytes(e.data(), new Shape(e.shape()), e.dtype(), Context.cpu());
    }

    /** The length the decoded entry occupies, by record version. */
    private static long recordLength(byte[] record, ParamsFile.Entry e) {
        int magic = ByteBuffer.wrap(record, 0, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
        int ndim = e.shape().length;
        long data = e.data().length;
        if (magic == ParamsFile.V2_MAGIC || magic == ParamsFile.V3_MAGIC) {
            return 4 + 4 + 4 + 8L * ndim + 12 + data;
        }
        if (magic == ParamsFile.V1_MAGIC) {
            return 4 + 4 + 8L * ndim + 12 + data;
        }
        return 4 + 4L * ndim + 12 + data;
    }
}
