package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Optimizer states to and from their pickled MXNet form (spec §7.4): None, an NDArray object
 * ({@code mxnet.ndarray.ndarray.NDArray}, reduced with {@code (None,)} and built from {@code
 * {'handle': bytearray(<raw record>)}}), or a tuple of states. Internal; stateless.
 */
final class StatesCodec {
    static final Pickle.Global NDARRAY = new Pickle.Global("mxnet.ndarray.ndarray", "NDArray");

    private StatesCodec() {}

    static Object toPython(Object state) {
        if (state == null) {
            return null;
        }
        if (state instanceof NDArray a) {
            Map<Object, Object> d = new LinkedHashMap<>();
            d.put("handle", new Pickle.ByteArray(NDArrayRecord.encode(a)));
            return new Pickle.PObject(NDARRAY, Pickle.Tuple.of((Object) null), false, d);
        }
        if (state instanceof List<?> l) {
            List<Object> items = new ArrayList<>(l.size());
            for (Object o : l) {
                items.add(toPython(o));
            }
            return new Pickle.Tuple(items);
        }
        throw new IllegalArgumentException("cannot save an optimizer state of type " + state.getClass().getName());
    }

    /**
     * Decodes a state; on failure nothing stays allocated.
     *
     * @return null, a detached NDArray on cpu(0), or an unmodifiable list
     */
    static Object fromPython(Object v, String what) {
        if (v == null) {
            return null;
        }
        if (v instanceof Pickle.Tuple || v instanceof List) {
            List<?> items = v instanceof Pickle.Tuple t ? t.items() : (List<?>) v;
            List<Object> out = new ArrayList<>(items.size());
            try {
                for (int i = 0; i < items.size(); i++) {
                    out.add(fromPython(items.get(i), what + "[" + i + "]"));
                }
            } catch (RuntimeException e) {
                out.forEach(StatesCodec::close);
                throw e;
            }
            return Collections.unmodifiableList(out);
        }
        if (v instanceof Pickle.PObject p) {
            String cls = p.cls.toString();
            if (cls.endsWith("RowSparseNDArray") || cls.endsWith("CSRNDArray")) {
                throw new IllegalArgumentException(what + ": sparse optimizer states (" + cls + ") are not supported");
            }
            boolean known = cls.equals("mxnet.ndarray.ndarray.NDArray") || cls.equals("mxnet.ndarray.NDArray")
                    || cls.equals("mxnet.numpy.ndarray") || cls.equals("mxnet.numpy.multiarray.ndarray");
            if (!known) {
                throw new IllegalArgumentException(what + ": expected an mxnet NDArray, got " + cls);
            }
            if (!(p.state instanceof Map<?, ?> d) || !d.containsKey("handle")) {
                throw new IllegalArgumentException(what + ": NDArray without a 'handle' state");
            }
            Object h = d.get("handle");
            byte[] rec;
            if (h instanceof Pickle.ByteArray b) {
                rec = b.bytes();
            } else if (h instanceof byte[] b) {
                rec = b;
            } else {
                throw new IllegalArgumentException(what + ": NDArray handle is a " + Pickle.typeName(h) + ", not a bytearray");
            }
            return NDArrayRecord.decode(rec, what).detach();
        }
        throw new IllegalArgumentException(what + ": expected None, an NDArray or a tuple, got " + Pickle.typeName(v));
    }

    static void close(Object s) {
        if (s instanceof NDArray a) {
            a.close();
        } else if (s instanceof List<?> l) {
            l.forEach(StatesCodec::close);
        }
    }
}
