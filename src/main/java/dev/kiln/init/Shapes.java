package dev.kiln.init;

/** Shape helpers. Package-private; stateless. */
final class Shapes {
    private Shapes() {}

    /** Python's tuple text: {@code (2, 3)}, {@code (3,)}, {@code ()}. */
    static String py(long[] dims) {
        if (dims == null) {
            return "None";
        }
        StringBuilder sb = new StringBuilder("(");
        for (int i = 0; i < dims.length; i++) {
            sb.append(i == 0 ? "" : ", ").append(dims[i]);
        }
        return sb.append(dims.length == 1 ? ",)" : ")").toString();
    }

    static long product(long[] dims, int from) {
        long p = 1;
        for (int i = from; i < dims.length; i++) {
            p *= dims[i];
        }
        return p;
    }
}
