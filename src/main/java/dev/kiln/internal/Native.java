package dev.kiln.internal;

import dev.kiln.engine.KilnException;

/** Status checking for {@link KilnNative} calls. Internal. Thread-safe. */
public final class Native {
    private Native() {}

    /** Throws {@link KilnException} (or {@link OutOfMemoryError}-like {@link dev.kiln.engine.KilnOutOfMemoryException}) when {@code status != 0}. */
    public static void check(int status, String what) {
        if (status != 0) {
            String msg = KilnNative.kiln_last_error();
            String full = (what == null || what.isEmpty()) ? msg : what + ": " + msg;
            if (msg != null && msg.startsWith("out of memory")) {
                throw new dev.kiln.engine.KilnOutOfMemoryException(full);
            }
            throw new KilnException(full);
        }
    }

    /** Checks the status and returns the thread-local string the call produced. */
    public static String string(int status, String what) {
        check(status, what);
        return KilnNative.kiln_last_string();
    }
}
