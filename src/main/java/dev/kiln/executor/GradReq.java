package dev.kiln.executor;

/** How a backward pass writes an argument's gradient (MXNet's grad_req). */
public enum GradReq {
    /** No gradient is computed or stored. */
    NULL(0),
    /** The gradient overwrites the gradient array. */
    WRITE(1),
    /** The gradient is added to the gradient array (accumulation over several backward calls). */
    ADD(3);

    private final int code;

    GradReq(int code) {
        this.code = code;
    }

    /** The native code. */
    public int code() {
        return code;
    }

    /** Parses MXNet's names {@code null}, {@code write}, {@code add} (and {@code inplace} as write). */
    public static GradReq of(String s) {
        switch (s) {
            case "null": return NULL;
            case "write": case "inplace": return WRITE;
            case "add": return ADD;
            default: throw new IllegalArgumentException("grad_req must be null, write or add, got '" + s + "'");
        }
    }
}
