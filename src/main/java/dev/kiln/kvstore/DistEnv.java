package dev.kiln.kvstore;

import java.math.BigInteger;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where this process sits in a distributed job: rank, world size, local rank, the rendezvous
 * address (rank 0's host and port) and the deadline of every collective operation.
 *
 * <p>{@link #fromEnvironment(Map)} reads it from the first of these contracts that is present:
 *
 * <ol>
 *   <li><b>torchrun</b> (and {@link dev.kiln.kvstore.launch.Launcher}): {@code RANK}, {@code
 *       WORLD_SIZE}, {@code LOCAL_RANK} (default 0), {@code MASTER_ADDR} (default {@code
 *       127.0.0.1}), {@code MASTER_PORT} (default {@value #DEFAULT_PORT});
 *   <li><b>Open MPI</b> ({@code mpirun}): {@code OMPI_COMM_WORLD_RANK}, {@code
 *       OMPI_COMM_WORLD_SIZE}, {@code OMPI_COMM_WORLD_LOCAL_RANK};
 *   <li><b>MPICH / Hydra</b> ({@code mpiexec}): {@code PMI_RANK}, {@code PMI_SIZE}, {@code
 *       MPI_LOCALRANKID};
 *   <li><b>Slurm</b> ({@code srun}): {@code SLURM_PROCID}, {@code SLURM_NTASKS}, {@code
 *       SLURM_LOCALID}; the master is the first host of {@code SLURM_STEP_NODELIST} (else {@code
 *       SLURM_JOB_NODELIST}), written in Slurm's compressed form ({@code node[01-04,07],gpu3} starts
 *       with {@code node01}); the port is {@value #SLURM_PORT_BASE} + ({@code SLURM_JOB_ID} mod
 *       {@value #SLURM_PORT_SPAN}), so every task of a job derives the same unprivileged port below
 *       Linux's ephemeral range (the convention PyTorch Lightning uses under Slurm).
 * </ol>
 *
 * <p>{@code MASTER_ADDR} and {@code MASTER_PORT}, when set, override what any contract derives. An
 * MPI job whose ranks span several hosts has no way to know rank 0's host, so it needs {@code
 * MASTER_ADDR} (e.g. {@code mpirun -x MASTER_ADDR=host0}); on one host the MPI contracts use {@code
 * 127.0.0.1} and port {@value #DEFAULT_PORT}. {@code KV_TIMEOUT_S} (seconds, may be fractional)
 * sets {@link #timeout()}, default {@link #DEFAULT_TIMEOUT}.
 *
 * <p>Malformed values raise {@link IllegalArgumentException}, a missing contract or missing
 * variable {@link IllegalStateException}; both messages name the variable and its value.
 *
 * <p>Thread-safety: immutable.
 *
 * @param rank this process's rank in {@code [0, worldSize)}
 * @param worldSize the number of processes, at least 1
 * @param localRank the rank among the processes on this host, in {@code [0, worldSize)}
 * @param masterAddr host name or address of the rendezvous (rank 0's host)
 * @param masterPort TCP port of the rendezvous, 0..65535 (0 only for in-process test doubles that
 *     never listen)
 * @param timeout deadline of every collective operation, positive
 */
public record DistEnv(int rank, int worldSize, int localRank, String masterAddr, int masterPort, Duration timeout) {
    /** Default deadline of a collective operation. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(300);

    /** torchrun's default rendezvous port, used when no contract gives one. */
    public static final int DEFAULT_PORT = 29500;

    /** Lowest port derived from {@code SLURM_JOB_ID}. */
    public static final int SLURM_PORT_BASE = 15000;

    /** Number of ports derived from {@code SLURM_JOB_ID}: {@code [15000, 25000)}. */
    public static final int SLURM_PORT_SPAN = 10000;

    /** Longest accepted {@code KV_TIMEOUT_S}: about 31 years, far from {@link Duration}'s limits. */
    private static final double MAX_TIMEOUT_S = 1e9;

    private static final String LOOPBACK = "127.0.0.1";
    private static final String CONTRACTS = "torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), "
            + "Open MPI (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK), "
            + "MPICH/Hydra (PMI_RANK, PMI_SIZE, MPI_LOCALRANKID) or "
            + "Slurm (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_STEP_NODELIST/SLURM_JOB_NODELIST, SLURM_JOB_ID)";
    private static final Pattern SLURM_RANGE = Pattern.compile("(\\d+)(?:-(\\d+))?");

    /** Checks the components (the environment parsers check first, with the variables' names). */
    public DistEnv {
        if (worldSize < 1) {
            throw new IllegalArgumentException("worldSize " + worldSize + " must be at least 1");
        }
        if (rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank " + rank + " is outside [0, " + worldSize + ")");
        }
        if (localRank < 0 || localRank >= worldSize) {
            throw new IllegalArgumentException("localRank " + localRank + " is outside [0, " + worldSize + ")");
        }
        if (masterAddr == null || masterAddr.isBlank()) {
            throw new IllegalArgumentException("masterAddr is empty");
        }
        if (masterPort < 0 || masterPort > 65535) {
            throw new IllegalArgumentException("masterPort " + masterPort + " is outside 0..65535");
        }
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout " + timeout + " must be positive");
        }
    }

    /** Reads the position from the process environment (see the class comment). */
    public static DistEnv fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /**
     * Reads the position from {@code env} (see the class comment for the contracts and their order).
     *
     * @throws IllegalStateException when no contract is present, or one lacks a required variable
     * @throws IllegalArgumentException when a value is malformed or out of range
     */
    public static DistEnv fromEnvironment(Map<String, String> env) {
        Objects.requireNonNull(env, "env");
        return switch (source(env)) {
            case "torchrun" -> torchrun(env);
            case "Open MPI" -> mpi(env, "Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                    "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE");
            case "MPICH/Hydra" -> mpi(env, "MPICH/Hydra", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS");
            default -> slurm(env);
        };
    }

    /**
     * Names the contract {@link #fromEnvironment(Map)} reads from {@code env}: {@code "torchrun"},
     * {@code "Open MPI"}, {@code "MPICH/Hydra"} or {@code "Slurm"} (for log lines).
     *
     * @throws IllegalStateException when none is present
     */
    public static String source(Map<String, String> env) {
        if (env.containsKey("RANK") || env.containsKey("WORLD_SIZE")) {
            return "torchrun";
        }
        if (env.containsKey("OMPI_COMM_WORLD_RANK")) {
            return "Open MPI";
        }
        if (env.containsKey("PMI_RANK")) {
            return "MPICH/Hydra";
        }
        if (env.containsKey("SLURM_PROCID")) {
            return "Slurm";
        }
        throw new IllegalStateException("a distributed KVStore needs its place in the job, and the environment holds "
                + "none of the contracts it reads: " + CONTRACTS);
    }

    private static DistEnv torchrun(Map<String, String> env) {
        int world = worldSize(env, "WORLD_SIZE", "torchrun");
        int rank = rankIn(env, "RANK", "torchrun", world, "WORLD_SIZE");
        int local = optionalRankIn(env, "LOCAL_RANK", world);
        String addr = env.containsKey("MASTER_ADDR") ? masterAddr(env) : LOOPBACK;
        int port = env.containsKey("MASTER_PORT") ? masterPort(env) : DEFAULT_PORT;
        return new DistEnv(rank, world, local, addr, port, timeout(env));
    }

    private static DistEnv mpi(Map<String, String> env, String contract, String rankVar, String sizeVar,
            String localVar, String localSizeVar) {
        int world = worldSize(env, sizeVar, contract);
        int rank = rankIn(env, rankVar, contract, world, sizeVar);
        int local = optionalRankIn(env, localVar, world);
        String addr;
        if (env.containsKey("MASTER_ADDR")) {
            addr = masterAddr(env);
        } else if (world == 1 || (env.containsKey(localSizeVar) && parseInt(env, localSizeVar) == world)) {
            addr = LOOPBACK;
        } else {
            String shown = env.containsKey(localSizeVar) ? "=" + quote(env.get(localSizeVar)) : " not set";
            throw new IllegalStateException(contract + " job of " + world + " ranks with " + localSizeVar + shown
                    + ": the ranks may span several hosts, so set MASTER_ADDR to rank 0's host "
                    + "(e.g. mpirun -x MASTER_ADDR=<host> -x MASTER_PORT=<port>)");
        }
        int port = env.containsKey("MASTER_PORT") ? masterPort(env) : DEFAULT_PORT;
        return new DistEnv(rank, world, local, addr, port, timeout(env));
    }

    private static DistEnv slurm(Map<String, String> env) {
        int world = worldSize(env, "SLURM_NTASKS", "Slurm");
        int rank = rankIn(env, "SLURM_PROCID", "Slurm", world, "SLURM_NTASKS");
        int local = optionalRankIn(env, "SLURM_LOCALID", world);
        return new DistEnv(rank, world, local, slurmMaster(env), slurmPort(env), timeout(env));
    }

    private static String slurmMaster(Map<String, String> env) {
        if (env.containsKey("MASTER_ADDR")) {
            return masterAddr(env);
        }
        for (String var : new String[] {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST"}) {
            if (env.containsKey(var)) {
                return firstSlurmHost(var, env.get(var));
            }
        }
        throw new IllegalStateException("Slurm contract: neither MASTER_ADDR, SLURM_STEP_NODELIST nor "
                + "SLURM_JOB_NODELIST is set, so rank 0's host is unknown");
    }

    private static int slurmPort(Map<String, String> env) {
        if (env.containsKey("MASTER_PORT")) {
            return masterPort(env);
        }
        if (!env.containsKey("SLURM_JOB_ID")) {
            throw new IllegalStateException("Slurm contract: neither MASTER_PORT nor SLURM_JOB_ID is set, so no "
                    + "rendezvous port can be derived");
        }
        String v = env.get("SLURM_JOB_ID").trim();
        if (!v.matches("\\d+")) {
            throw new IllegalArgumentException("SLURM_JOB_ID=" + quote(env.get("SLURM_JOB_ID"))
                    + " is not a non-negative integer");
        }
        return SLURM_PORT_BASE + new BigInteger(v).mod(BigInteger.valueOf(SLURM_PORT_SPAN)).intValue();
    }

    private static int worldSize(Map<String, String> env, String var, String contract) {
        int world = required(env, var, contract);
        if (world < 1) {
            throw new IllegalArgumentException(var + "=" + quote(env.get(var)) + " must be at least 1");
        }
        return world;
    }

    private static int rankIn(Map<String, String> env, String var, String contract, int world, String worldVar) {
        int rank = required(env, var, contract);
        if (rank < 0 || rank >= world) {
            throw new IllegalArgumentException(var + "=" + quote(env.get(var)) + " is outside [0, " + worldVar + "="
                    + world + ")");
        }
        return rank;
    }

    /** An optional local rank (default 0) in {@code [0, world)}. */
    private static int optionalRankIn(Map<String, String> env, String var, int world) {
        if (!env.containsKey(var)) {
            return 0;
        }
        int local = parseInt(env, var);
        if (local < 0 || local >= world) {
            throw new IllegalArgumentException(var + "=" + quote(env.get(var)) + " is outside [0, " + world + ")");
        }
        return local;
    }

    private static int required(Map<String, String> env, String var, String contract) {
        if (!env.containsKey(var)) {
            throw new IllegalStateException(contract + " contract: " + var + " is not set (found "
                    + presentOf(env, "RANK", "WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK",
                            "PMI_SIZE", "SLURM_PROCID", "SLURM_NTASKS") + ")");
        }
        return parseInt(env, var);
    }

    private static String presentOf(Map<String, String> env, String... vars) {
        List<String> found = new ArrayList<>();
        for (String v : vars) {
            if (env.containsKey(v)) {
                found.add(v + "=" + quote(env.get(v)));
            }
        }
        return String.join(", ", found);
    }

    private static int parseInt(Map<String, String> env, String var) {
        String v = env.get(var);
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(var + "=" + quote(v) + " is not an integer", e);
        }
    }

    private static String masterAddr(Map<String, String> env) {
        String addr = env.get("MASTER_ADDR").trim();
        if (addr.isEmpty() || addr.chars().anyMatch(Character::isWhitespace)) {
            throw new IllegalArgumentException("MASTER_ADDR=" + quote(env.get("MASTER_ADDR"))
                    + " is not a host name or address");
        }
        return addr;
    }

    private static int masterPort(Map<String, String> env) {
        int port = parseInt(env, "MASTER_PORT");
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("MASTER_PORT=" + quote(env.get("MASTER_PORT")) + " is outside 1..65535");
        }
        return port;
    }

    private static Duration timeout(Map<String, String> env) {
        String v = env.get("KV_TIMEOUT_S");
        if (v == null) {
            return DEFAULT_TIMEOUT;
        }
        double s;
        try {
            s = Double.parseDouble(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("KV_TIMEOUT_S=" + quote(v) + " is not a number of seconds", e);
        }
        long nanos = Math.round(s * 1e9);
        if (!(s > 0) || s > MAX_TIMEOUT_S || nanos <= 0) {
            throw new IllegalArgumentException("KV_TIMEOUT_S=" + quote(v)
                    + " must be a positive number of seconds, at most " + (long) MAX_TIMEOUT_S);
        }
        return Duration.ofNanos(nanos);
    }

    /**
     * The first host of a Slurm host list such as {@code node[01-04,07],gpu3} ({@code node01}); the
     * whole list is checked, so a malformed one is reported even when its first host would parse.
     * Zero padding is kept as written. Several bracket groups in one name ({@code r[1-2]n[3-4]})
     * give the first of each ({@code r1n3}), as Slurm expands them.
     *
     * @param var the variable the list came from (for messages)
     * @throws IllegalArgumentException when the list is empty or malformed
     */
    static String firstSlurmHost(String var, String list) {
        String trimmed = list.trim();
        List<String> items = splitTopLevel(var, trimmed);
        for (String item : items) {
            firstOfItem(var, trimmed, item); // checks every item
        }
        return firstOfItem(var, trimmed, items.get(0));
    }

    /** Splits a host list at the commas outside brackets. */
    private static List<String> splitTopLevel(String var, String list) {
        List<String> items = new ArrayList<>();
        int depth = 0;
        int start = 0;
        for (int i = 0; i <= list.length(); i++) {
            char c = i < list.length() ? list.charAt(i) : ',';
            if (c == '[') {
                depth++;
            } else if (c == ']') {
                depth--;
            }
            if (depth < 0 || depth > 1) {
                throw badHostList(var, list, "unbalanced brackets");
            }
            if (c == ',' && depth == 0) {
                if (i == start) {
                    throw badHostList(var, list, "an empty host name");
                }
                items.add(list.substring(start, i));
                start = i + 1;
            }
        }
        if (depth != 0) {
            throw badHostList(var, list, "an unclosed '['");
        }
        return items;
    }

    /** The first host of one item: each bracket group replaced by its first number. */
    private static String firstOfItem(String var, String list, String item) {
        StringBuilder host = new StringBuilder();
        int i = 0;
        while (i < item.length()) {
            char c = item.charAt(i);
            if (c == '[') {
                int close = item.indexOf(']', i);
                host.append(firstOfRanges(var, list, item.substring(i + 1, close)));
                i = close + 1;
            } else if (Character.isWhitespace(c)) {
                throw badHostList(var, list, "white space in a host name");
            } else {
                host.append(c);
                i++;
            }
        }
        return host.toString();
    }

    private static String firstOfRanges(String var, String list, String ranges) {
        String first = null;
        for (String r : ranges.split(",", -1)) {
            Matcher m = SLURM_RANGE.matcher(r);
            if (!m.matches()) {
                throw badHostList(var, list, "'[" + ranges + "]' holds '" + r + "', not a number or a range lo-hi");
            }
            if (m.group(2) != null && new BigInteger(m.group(1)).compareTo(new BigInteger(m.group(2))) > 0) {
                throw badHostList(var, list, "the range '" + r + "' runs backwards");
            }
            if (first == null) {
                first = m.group(1);
            }
        }
        return first;
    }

    private static IllegalArgumentException badHostList(String var, String list, String why) {
        return new IllegalArgumentException(var + "=" + quote(list) + " is not a Slurm host list (" + why + ")");
    }

    private static String quote(String v) {
        return "'" + v + "'";
    }
}
