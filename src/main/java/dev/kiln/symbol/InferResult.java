package dev.kiln.symbol;

import dev.kiln.ndarray.DType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Result of shape/type inference on a {@link Symbol}: one shape and one type per argument
 * ({@link Symbol#listArguments()} order), per output ({@link Symbol#listOutputs()}) and per
 * auxiliary state ({@link Symbol#listAuxiliaryStates()}).
 *
 * <p>Unknown values: a shape is null when even its rank is unknown, and holds -1 for each unknown
 * dimension; a type is null when unknown. {@link #isComplete()} says whether everything is known.
 *
 * <p>Thread-safety: immutable; the getters return copies of the shape arrays.
 */
public final class InferResult {
    private final List<String> argNames;
    private final List<String> outNames;
    private final List<String> auxNames;
    private final List<long[]> argShapes;
    private final List<long[]> outShapes;
    private final List<long[]> auxShapes;
    private final List<DType> argTypes;
    private final List<DType> outTypes;
    private final List<DType> auxTypes;
    private final boolean complete;

    InferResult(List<String> argNames, List<String> outNames, List<String> auxNames,
            List<long[]> argShapes, List<long[]> outShapes, List<long[]> auxShapes,
            List<DType> argTypes, List<DType> outTypes, List<DType> auxTypes, boolean complete) {
        this.argNames = List.copyOf(argNames);
        this.outNames = List.copyOf(outNames);
        this.auxNames = List.copyOf(auxNames);
        this.argShapes = copyShapes(argShapes);
        this.outShapes = copyShapes(outShapes);
        this.auxShapes = copyShapes(auxShapes);
        this.argTypes = Collections.unmodifiableList(new ArrayList<>(argTypes));
        this.outTypes = Collections.unmodifiableList(new ArrayList<>(outTypes));
        this.auxTypes = Collections.unmodifiableList(new ArrayList<>(auxTypes));
        this.complete = complete;
    }

    private static List<long[]> copyShapes(List<long[]> l) {
        List<long[]> out = new ArrayList<>(l.size());
        for (long[] s : l) {
            out.add(s == null ? null : s.clone());
        }
        return out;
    }

    /** @return argument shapes in {@code listArguments()} order (copies; null = unknown rank) */
    public List<long[]> argShapes() {
        return copyShapes(argShapes);
    }

    /** @return output shapes in {@code listOutputs()} order (copies; null = unknown rank) */
    public List<long[]> outShapes() {
        return copyShapes(outShapes);
    }

    /** @return auxiliary-state shapes in {@code listAuxiliaryStates()} order (copies) */
    public List<long[]> auxShapes() {
        return copyShapes(auxShapes);
    }

    /** @return argument types (null = unknown), unmodifiable */
    public List<DType> argTypes() {
        return argTypes;
    }

    /** @return output types (null = unknown), unmodifiable */
    public List<DType> outTypes() {
        return outTypes;
    }

    /** @return auxiliary-state types (null = unknown), unmodifiable */
    public List<DType> auxTypes() {
        return auxTypes;
    }

    /** @return argument name to shape, in argument order (copies) */
    public Map<String, long[]> argShapeMap() {
        return shapeMap(argNames, argShapes);
    }

    /** @return output name to shape, in output order (copies) */
    public Map<String, long[]> outShapeMap() {
        return shapeMap(outNames, outShapes);
    }

    /** @return auxiliary-state name to shape (copies) */
    public Map<String, long[]> auxShapeMap() {
        return shapeMap(auxNames, auxShapes);
    }

    /** @return argument name to type */
    public Map<String, DType> argTypeMap() {
        return typeMap(argNames, argTypes);
    }

    /** @return output name to type */
    public Map<String, DType> outTypeMap() {
        return typeMap(outNames, outTypes);
    }

    /** @return auxiliary-state name to type */
    public Map<String, DType> auxTypeMap() {
        return typeMap(auxNames, auxTypes);
    }

    /** @return true when the native pass reported every shape and type as known */
    public boolean isComplete() {
        return complete;
    }

    /** @return true when every shape has a known rank and no -1 dimension */
    public boolean shapesComplete() {
        return known(argShapes) && known(outShapes) && known(auxShapes);
    }

    /** @return true when every type is known */
    public boolean typesComplete() {
        return !argTypes.contains(null) && !outTypes.contains(null) && !auxTypes.contains(null);
    }

    private static boolean known(List<long[]> shapes) {
        for (long[] s : shapes) {
            if (s == null) {
                return false;
            }
            for (long d : s) {
                if (d < 0) {
                    return false;
                }
            }
        }
        return true;
    }

    private static Map<String, long[]> shapeMap(List<String> names, List<long[]> shapes) {
        Map<String, long[]> m = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            long[] s = shapes.get(i);
            m.put(names.get(i), s == null ? null : s.clone());
        }
        return m;
    }

    private static Map<String, DType> typeMap(List<String> names, List<DType> types) {
        Map<String, DType> m = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            m.put(names.get(i), types.get(i));
        }
        return m;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("InferResult{complete=").append(complete);
        append(sb, "args", argNames, argShapes, argTypes);
        append(sb, "outputs", outNames, outShapes, outTypes);
        append(sb, "aux", auxNames, auxShapes, auxTypes);
        return sb.append('}').toString();
    }

    private static void append(StringBuilder sb, String what, List<String> names, List<long[]> shapes, List<DType> types) {
        sb.append(", ").append(what).append("=[");
        for (int i = 0; i < names.size(); i++) {
            sb.append(i == 0 ? "" : ", ").append(names.get(i)).append(' ')
                    .append(shapes.get(i) == null ? "?" : Arrays.toString(shapes.get(i)))
                    .append(' ').append(types.get(i) == null ? "?" : types.get(i).mxName());
        }
        sb.append(']');
    }
}
