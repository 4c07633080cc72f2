package dev.kiln.io;

/**
 * The 32-bit Mersenne Twister (MT19937, Matsumoto and Nishimura 1998) with the two shuffles the
 * iterators need to reproduce MXNet's orders exactly:
 * <ul>
 *   <li>{@link #numpyShuffle}: NumPy's legacy {@code RandomState.shuffle} (what
 *       {@code NDArrayIter} calls through {@code np.random.shuffle}); a generator built from seed
 *       {@code s} draws what {@code np.random.seed(s)} would;</li>
 *   <li>{@link #stdShuffle}: libstdc++'s {@code std::shuffle} with
 *       {@code std::uniform_int_distribution} as compiled into MXNet 1.9.1's library (one draw
 *       per position, rejection by division), used by MXNet's {@code MNISTIter}.</li>
 * </ul>
 * Not thread-safe.
 */
final class Mt19937 {
    private final int[] mt = new int[624];
    private int idx;

    /** {@code init_genrand(seed)}: NumPy's {@code seed(int)} and C++'s {@code std::mt19937(seed)}; uses the low 32 bits. */
    Mt19937(long seed) {
        mt[0] = (int) seed;
        for (int i = 1; i < 624; i++) {
            long prev = mt[i - 1] & 0xffffffffL;
            mt[i] = (int) (1812433253L * (prev ^ (prev >>> 30)) + i);
        }
        idx = 624;
    }

    /** The next 32-bit output as an unsigned value. */
    long nextUint32() {
        if (idx >= 624) {
            for (int i = 0; i < 624; i++) {
                int y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff);
                int v = mt[(i + 397) % 624] ^ (y >>> 1);
                if ((y & 1) != 0) {
                    v ^= 0x9908b0df;
                }
                mt[i] = v;
            }
            idx = 0;
        }
        int y = mt[idx++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >>> 18;
        return y & 0xffffffffL;
    }

    /** NumPy's {@code random_interval(max)}: uniform in [0, max] by masked rejection (max < 2^32). */
    long numpyInterval(long max) {
        if (max == 0) {
            return 0;
        }
        long mask = max;
        mask |= mask >>> 1;
        mask |= mask >>> 2;
        mask |= mask >>> 4;
        mask |= mask >>> 8;
        mask |= mask >>> 16;
        long v;
        do {
            v = nextUint32() & mask;
        } while (v > max);
        return v;
    }

    /** NumPy's legacy in-place shuffle: for i = n-1 down to 1, swap a[i] with a[interval(i)]. */
    void numpyShuffle(int[] a) {
        for (int i = a.length - 1; i >= 1; i--) {
            int j = (int) numpyInterval(i);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }

    /** libstdc++'s {@code uniform_int_distribution(0, max)} on a 32-bit engine (downscaling by division). */
    long stdUniform(long max) {
        final long urngRange = 0xffffffffL;
        if (max == urngRange) {
            return nextUint32();
        }
        long erange = max + 1;
        long scaling = urngRange / erange;
        long past = erange * scaling;
        long r;
        do {
            r = nextUint32();
        } while (r >= past);
        return r / scaling;
    }

    /** libstdc++'s (pre-GCC 9) {@code std::shuffle}: for i = 1..n-1, swap a[i] with a[uniform(0, i)]. */
    void stdShuffle(int[] a) {
        for (int i = 1; i < a.length; i++) {
            int j = (int) stdUniform(i);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}
