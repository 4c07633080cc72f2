package dev.kiln.kvstore;

import java.time.Duration;
import java.util.Map;

/**
 * Where this process sits in a distributed job: torchrun's environment contract ({@code RANK},
 * {@code WORLD_SIZE}, {@code LOCAL_RANK}, {@code MASTER_ADDR}, {@code MASTER_PORT}) plus
 * {@code KV_TIMEOUT_S}, the deadline of every collective operation.
 */
public record DistEnv(int rank, int worldSize, int localRank, String masterAddr, int masterPort, Duration timeout) {
    /** Default deadline of a collective operation. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(300);

    /** Reads the contract from the process environment. */
    public static DistEnv fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** Reads the contract from {@code env}. */
    public static DistEnv fromEnvironment(Map<String, String> env) {
        String r = env.get("RANK");
        String w = env.get("WORLD_SIZE");
        if (r == null || w == null) {
            throw new IllegalStateException("a distributed KVStore needs RANK and WORLD_SIZE (torchrun's contract) in the environment");
        }
        int rank = Integer.parseInt(r.trim());
        int world = Integer.parseInt(w.trim());
        int local = Integer.parseInt(env.getOrDefault("LOCAL_RANK", "0").trim());
        String addr = env.getOrDefault("MASTER_ADDR", "127.0.0.1");
        int port = Integer.parseInt(env.getOrDefault("MASTER_PORT", "29500").trim());
        Duration t = env.containsKey("KV_TIMEOUT_S") ? Duration.ofMillis((long) (Double.parseDouble(env.get("KV_TIMEOUT_S")) * 1000)) : DEFAULT_TIMEOUT;
        return new DistEnv(rank, world, local, addr, port, t);
    }
}
