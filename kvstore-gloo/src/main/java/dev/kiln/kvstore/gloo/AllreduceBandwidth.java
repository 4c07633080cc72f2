package dev.kiln.kvstore.gloo;

import dev.kiln.kvstore.Collective;
import dev.kiln.kvstore.DistEnv;
import dev.kiln.ndarray.DType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Locale;

/**
 * Measures Gloo allreduce (sum, float32) time and bandwidth. Run it as N processes with torchrun's
 * environment ({@code RANK}, {@code WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT}, optional
 * {@code KV_TIMEOUT_S}); rank 0 prints a markdown table.
 *
 * <p>Arguments (all optional): sizes in MB, comma-separated (default {@code 10,25,50,100}); timed
 * repetitions (default 10); warm-up repetitions (default 3). Each repetition starts after a barrier;
 * its time is the slowest rank's. Bus bandwidth is {@code size / time * 2(N-1)/N}, the bytes each
 * rank moves in a ring allreduce (NCCL-tests' convention), so it is comparable across N.
 */
public final class AllreduceBandwidth {
    private AllreduceBandwidth() {
    }

    /** Runs the measurement; see the class comment for the arguments. */
    public static void main(String[] args) {
        int[] sizesMb = Arrays.stream((args.length > 0 ? args[0] : "10,25,50,100").split(",")).mapToInt(Integer::parseInt).toArray();
        int reps = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        int warmup = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        try (Collective c = GlooCollective.join(DistEnv.fromEnvironment())) {
            int n = c.size();
            if (c.rank() == 0) {
                System.out.printf(Locale.ROOT, "# gloo allreduce float32 sum, %d ranks, %d reps after %d warm-up, %d cores%n",
                        n, reps, warmup, Runtime.getRuntime().availableProcessors());
                System.out.println("| MB | median ms | min ms | algbw GB/s (median) | busbw GB/s (median) | busbw GB/s (best) |");
                System.out.println("|---:|---:|---:|---:|---:|---:|");
            }
            for (int mb : sizesMb) {
                long bytes = (long) mb * 1_000_000L;
                double[] ms = measure(c, (int) (bytes / 4), reps, warmup);
                if (c.rank() == 0) {
                    double median = median(ms);
                    double min = Arrays.stream(ms).min().orElseThrow();
                    double bus = 2.0 * (n - 1) / n;
                    System.out.printf(Locale.ROOT, "| %d | %.1f | %.1f | %.2f | %.2f | %.2f |%n", mb, median, min,
                            bytes / median / 1e6, bytes / median / 1e6 * bus, bytes / min / 1e6 * bus);
                }
            }
        }
    }

    /** The slowest rank's time of each timed repetition, in ms. */
    private static double[] measure(Collective c, int floats, int reps, int warmup) {
        ByteBuffer data = ByteBuffer.allocateDirect(4 * floats).order(ByteOrder.nativeOrder());
        for (int i = 0; i < floats; i++) {
            data.putFloat(4 * i, 1f / (1 + i % 7));
        }
        double[] ms = new double[reps];
        for (int r = -warmup; r < reps; r++) {
            c.barrier();
            long t0 = System.nanoTime();
            c.allreduceSum(data, DType.FLOAT32).await();
            long slowest = Arrays.stream(c.allgatherLong(System.nanoTime() - t0)).max().orElseThrow();
            if (r >= 0) {
                ms[r] = slowest / 1e6;
            }
        }
        return ms;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
