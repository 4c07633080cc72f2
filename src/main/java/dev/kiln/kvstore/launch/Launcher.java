package dev.kiln.kvstore.launch;

import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * Starts the N ranks of a distributed job on this host and watches them: the one-host launcher of
 * MXNet's {@code tools/launch.py --launcher local} and torchrun's {@code --nproc-per-node}.
 *
 * <p>{@link #run()} picks a free loopback port, starts {@code N} copies of the command with
 * torchrun's environment contract ({@code RANK}, {@code WORLD_SIZE}, {@code LOCAL_RANK} = rank,
 * {@code LOCAL_WORLD_SIZE}, {@code MASTER_ADDR=127.0.0.1}, {@code MASTER_PORT}) plus {@code
 * KILN_RESTART} (the attempt, 0 on the first start) and the extra variables, prints every line a rank
 * writes (stdout and stderr merged) as {@code [rank r] line}, and waits. A rank that exits 0 while
 * others still run is fine. On the <em>first</em> abnormal exit (non-zero code; death by signal
 * shows as {@code 128 + signal}) it stops all the other ranks with their whole process trees
 * (SIGTERM, then SIGKILL after {@linkplain Builder#optGrace a grace period}) and reports the failed
 * rank, its exit code and its last lines ({@link LaunchResult#describe()}). The optional wall-clock
 * limit stops everyone and reports a timeout. With {@link Builder#optMaxRestarts(int) maxRestarts}
 * M, a failed group is started again (on a new port) up to M times; workers resume from their own
 * checkpoints, reading {@code KILN_RESTART} if they care.
 *
 * <pre>{@code
 * LaunchResult r = Launcher.builder()
 *         .setWorkers(2)
 *         .setCommand(List.of("java", "-cp", "kiln.jar:app.jar", "com.example.Train"))
 *         .optEnv("KV_TIMEOUT_S", "30")
 *         .optTimeout(Duration.ofMinutes(10))
 *         .build()
 *         .run();
 * if (!r.succeeded()) {
 *     System.err.println(r.describe()); // rank 1 failed with exit code 137 (SIGKILL) after 3.2 s; others stopped. ...
 * }
 * }</pre>
 *
 * <p>From a shell: {@code java -cp kiln.jar dev.kiln.kvstore.launch.Launcher -n 2 [--timeout
 * SECONDS] [--max-restarts M] [--env K=V]... [--] command args...}. It exits 0 when every rank
 * exited 0; otherwise it prints the report line to stderr and exits with the failed rank's exit code
 * (1 if that is outside 1..255), {@value LaunchResult#TIMEOUT_STATUS} after the wall-clock limit, 1
 * when the command cannot be started, and 2 with a usage text on a usage error. Ctrl-C or SIGTERM
 * to the launcher stops the ranks too (a shutdown hook).
 *
 * <p>Processes that leave their parent's process tree (daemons that re-parent themselves) are out
 * of the launcher's reach. The port is free when picked; another program could take it before rank
 * 0 binds it, which shows as a rendezvous failure (and, with restarts, a retry on a new port).
 *
 * <p>Ownership: the launcher owns the processes it starts and stops them before {@link #run()}
 * returns or throws. Thread-safety: one {@link #run()} at a time (a second concurrent call throws
 * {@link IllegalStateException}); {@link #process(int)} may be called from any thread.
 */
public final class Launcher {
    /** The rendezvous address given to every rank. */
    public static final String MASTER_ADDR = "127.0.0.1";

    /** Variables the launcher sets itself, which {@link Builder#optEnv} refuses. */
    public static final Set<String> RESERVED_ENV = Set.of("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
            "MASTER_ADDR", "MASTER_PORT", "KILN_RESTART");

    /** Stands for "no wall-clock limit" (about 146 years, so that deadlines never overflow). */
    private static final Duration FOREVER = Duration.ofNanos(Long.MAX_VALUE / 2);

    static final String USAGE = String.join(System.lineSeparator(),
            "usage: java -cp kiln.jar dev.kiln.kvstore.launch.Launcher -n N [--timeout SECONDS] [--max-restarts M]",
            "           [--env KEY=VALUE]... [--] command [args...]",
            "  -n, --nproc-per-node N   number of ranks to start on this host (RANK, WORLD_SIZE, LOCAL_RANK,",
            "                           MASTER_ADDR=127.0.0.1, MASTER_PORT=<free port>, KILN_RESTART=<attempt>)",
            "  --timeout SECONDS        wall-clock limit for the whole job (default: none)",
            "  --max-restarts M         start the group again up to M times after a failure (default 0)",
            "  --env KEY=VALUE          extra environment variable for every rank (repeatable)",
            "exit status: 0 when every rank exited 0; else the failed rank's exit code (1 if outside 1..255),",
            "             124 after the wall-clock limit, 1 if the command cannot start, 2 on a usage error");

    private final int workers;
    private final List<String> command;
    private final Map<String, String> extraEnv;
    private final Path workingDir;
    private final Duration timeLimit;
    private final Consumer<String> sink;
    private final int maxRestarts;
    private final RankListener listener;
    private final Duration grace;
    private final int keepLines;
    private final Object sinkLock = new Object();
    private final AtomicBoolean running = new AtomicBoolean();
    private volatile RankGroup current;

    private Launcher(Builder b) {
        workers = b.workers;
        command = List.copyOf(b.command);
        extraEnv = Map.copyOf(b.env);
        workingDir = b.workingDir;
        timeLimit = b.timeLimit;
        sink = b.sink;
        maxRestarts = b.maxRestarts;
        listener = b.listener;
        grace = b.grace;
        keepLines = b.keepLines;
    }

    /** A builder: {@link Builder#setWorkers} and {@link Builder#setCommand} are required. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Runs the job to its end (see the class comment) and returns what happened; all the processes
     * it started have ended or been stopped when it returns.
     *
     * @throws IOException when the command cannot be started (the ranks already started are stopped)
     * @throws InterruptedException when the calling thread is interrupted (the ranks are stopped)
     * @throws IllegalStateException when another {@code run()} of this launcher is in progress
     */
    public LaunchResult run() throws IOException, InterruptedException {
        if (!running.compareAndSet(false, true)) {
            throw new IllegalStateException("this launcher is already running a job");
        }
        Thread hook = new Thread(this::stopCurrent, "kiln-launcher-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            return runAttempts();
        } finally {
            stopCurrent();
            removeHook(hook);
            running.set(false);
        }
    }

    private LaunchResult runAttempts() throws IOException, InterruptedException {
        long start = System.nanoTime();
        long deadline = start + (timeLimit == null || timeLimit.compareTo(FOREVER) > 0 ? FOREVER : timeLimit).toNanos();
        List<LaunchAttempt> attempts = new ArrayList<>();
        for (int attempt = 0; ; attempt++) {
            RankGroup group = new RankGroup(this, attempt, freeLoopbackPort());
            current = group;
            try {
                group.start();
                attempts.add(group.await(deadline, timeLimit));
            } finally {
                group.close();
            }
            LaunchAttempt last = attempts.get(attempts.size() - 1);
            boolean outOfTime = System.nanoTime() - deadline >= 0;
            if (last.succeeded() || last.timedOut() || attempt == maxRestarts || outOfTime) {
                return new LaunchResult(attempts, Duration.ofNanos(System.nanoTime() - start));
            }
            emit("[launcher] " + last.summary() + ". Restarting the group (restart " + (attempt + 1) + " of "
                    + maxRestarts + ").");
        }
    }

    /**
     * Rank {@code rank}'s process in the attempt now running, while it is alive (e.g. for a test that
     * sends it a signal); empty between attempts and after the run.
     */
    public Optional<ProcessHandle> process(int rank) {
        Objects.checkIndex(rank, workers);
        RankGroup g = current;
        return g == null || !running.get() ? Optional.empty() : Optional.ofNullable(g.handle(rank));
    }

    private void stopCurrent() {
        RankGroup g = current;
        if (g != null) {
            g.close();
        }
    }

    private static void removeHook(Thread hook) {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // the JVM is shutting down: the hook is running or has run, which is what it is for
        }
    }

    /** A TCP port that is free on the loopback interface right now. */
    static int freeLoopbackPort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IOException("no free TCP port on the loopback interface: " + e.getMessage(), e);
        }
    }

    /** Hands one line to the sink; one line at a time, so the sink needs no locking of its own. */
    void emit(String line) {
        synchronized (sinkLock) {
            try {
                sink.accept(line);
            } catch (RuntimeException e) {
                // a broken sink must not stop the pumps (a rank whose pipe fills up would block)
            }
        }
    }

    int workers() {
        return workers;
    }

    List<String> command() {
        return command;
    }

    Map<String, String> extraEnv() {
        return extraEnv;
    }

    Path workingDir() {
        return workingDir;
    }

    RankListener listener() {
        return listener;
    }

    Duration grace() {
        return grace;
    }

    int keepLines() {
        return keepLines;
    }

    /**
     * Command-line entry point; see the class comment for the arguments and exit statuses.
     */
    public static void main(String[] args) {
        System.exit(cli(args, System.out, System.err));
    }

    /** {@link #main} without the exit: returns the exit status. */
    static int cli(String[] args, PrintStream out, PrintStream err) {
        Builder b;
        try {
            b = parse(args);
        } catch (IllegalArgumentException | IllegalStateException e) {
            err.println("launcher: " + e.getMessage());
            err.println(USAGE);
            return 2;
        }
        if (b == null) {
            out.println(USAGE);
            return 0;
        }
        try {
            LaunchResult r = b.optOutput(out::println).build().run();
            if (!r.succeeded()) {
                err.println("launcher: " + r.describe());
            }
            return r.exitStatus();
        } catch (IOException e) {
            err.println("launcher: " + e.getMessage());
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            err.println("launcher: interrupted; ranks stopped");
            return 1;
        }
    }

    /** Parses the command line into a builder, or null for {@code --help}. */
    private static Builder parse(String[] args) {
        Builder b = builder();
        int i = 0;
        while (i < args.length && args[i].startsWith("-")) {
            String opt = args[i];
            if (opt.equals("--")) {
                i++;
                break;
            }
            if (opt.equals("-h") || opt.equals("--help")) {
                return null;
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(opt + " needs a value");
            }
            String value = args[i + 1];
            switch (opt) {
                case "-n", "--nproc-per-node" -> b.setWorkers(intOption(opt, value));
                case "--timeout" -> b.optTimeout(secondsOption(opt, value));
                case "--max-restarts" -> b.optMaxRestarts(intOption(opt, value));
                case "--env" -> {
                    int eq = value.indexOf('=');
                    if (eq <= 0) {
                        throw new IllegalArgumentException("--env '" + value + "' is not KEY=VALUE");
                    }
                    b.optEnv(value.substring(0, eq), value.substring(eq + 1));
                }
                default -> throw new IllegalArgumentException("unknown option '" + opt + "'");
            }
            i += 2;
        }
        if (i >= args.length) {
            throw new IllegalArgumentException("no command given");
        }
        return b.setCommand(Arrays.asList(args).subList(i, args.length)).check();
    }

    private static int intOption(String opt, String value) {
        try {
            return Integer.parseInt(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(opt + " '" + value + "' is not an integer");
        }
    }

    private static Duration secondsOption(String opt, String value) {
        double s;
        try {
            s = Double.parseDouble(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(opt + " '" + value + "' is not a number of seconds");
        }
        if (!(s > 0) || s > 1e9) {
            throw new IllegalArgumentException(opt + " '" + value + "' must be a positive number of seconds");
        }
        return Duration.ofMillis(Math.max(1, Math.round(s * 1000)));
    }

    /**
     * Configures a {@link Launcher}: {@code setX} for the required settings, {@code optX} for the
     * optional ones. Not thread-safe; {@link #build()} copies the settings.
     */
    public static final class Builder {
        private int workers;
        private List<String> command;
        private final Map<String, String> env = new LinkedHashMap<>();
        private Path workingDir;
        private Duration timeLimit;
        private Consumer<String> sink = System.out::println;
        private int maxRestarts;
        private RankListener listener = (attempt, rank, process) -> { };
        private Duration grace = Duration.ofSeconds(3);
        private int keepLines = 1000;

        private Builder() {
        }

        /** The number of ranks to start, at least 1 (required). */
        public Builder setWorkers(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("workers " + n + " must be at least 1");
            }
            workers = n;
            return this;
        }

        /** The program and its arguments, started once per rank (required, not empty). */
        public Builder setCommand(List<String> cmd) {
            Objects.requireNonNull(cmd, "command");
            if (cmd.isEmpty()) {
                throw new IllegalArgumentException("the command is empty");
            }
            for (String s : cmd) {
                Objects.requireNonNull(s, "an element of the command is null");
            }
            command = List.copyOf(cmd);
            return this;
        }

        /**
         * An extra environment variable for every rank (on top of this process's environment). The
         * launcher's own variables ({@link #RESERVED_ENV}) are refused.
         */
        public Builder optEnv(String key, String value) {
            Objects.requireNonNull(key, "key");
            Objects.requireNonNull(value, "value of " + key);
            if (key.isEmpty() || key.indexOf('=') >= 0 || key.indexOf('\0') >= 0 || value.indexOf('\0') >= 0) {
                throw new IllegalArgumentException("environment variable '" + key + "' is not a valid name=value pair");
            }
            if (RESERVED_ENV.contains(key)) {
                throw new IllegalArgumentException("environment variable " + key + " is set by the launcher itself");
            }
            env.put(key, value);
            return this;
        }

        /** {@link #optEnv(String, String)} for each entry. */
        public Builder optEnv(Map<String, String> vars) {
            vars.forEach(this::optEnv);
            return this;
        }

        /** The ranks' working directory (default: this process's). */
        public Builder optWorkingDir(Path dir) {
            if (!Files.isDirectory(dir)) {
                throw new IllegalArgumentException("working directory " + dir + " is not a directory");
            }
            workingDir = dir;
            return this;
        }

        /** Wall-clock limit for the whole job, restarts included (default: none). */
        public Builder optTimeout(Duration limit) {
            if (limit.isNegative() || limit.isZero()) {
                throw new IllegalArgumentException("time limit " + limit + " must be positive");
            }
            timeLimit = limit;
            return this;
        }

        /**
         * Where the ranks' prefixed lines (and the launcher's restart notices) go; default {@code
         * System.out::println}. Called from the launcher's reader threads, one line at a time; it
         * should not block for long (a rank whose output is not read stalls) and must not throw.
         */
        public Builder optOutput(Consumer<String> lineSink) {
            sink = Objects.requireNonNull(lineSink, "lineSink");
            return this;
        }

        /** How many times a failed group is started again, each with {@code KILN_RESTART} one higher (default 0). */
        public Builder optMaxRestarts(int m) {
            if (m < 0) {
                throw new IllegalArgumentException("max restarts " + m + " must be at least 0");
            }
            maxRestarts = m;
            return this;
        }

        /** Told of every started rank and its process (default: nobody). */
        public Builder optListener(RankListener l) {
            listener = Objects.requireNonNull(l, "listener");
            return this;
        }

        /** How long a stopped rank gets between SIGTERM and SIGKILL (default 3 s). */
        public Builder optGrace(Duration d) {
            if (d.isNegative()) {
                throw new IllegalArgumentException("grace " + d + " must not be negative");
            }
            grace = d;
            return this;
        }

        /** How many of each rank's newest output lines the result keeps (default 1000, at least 1). */
        public Builder optKeepLines(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("keep lines " + n + " must be at least 1");
            }
            keepLines = n;
            return this;
        }

        /** Builds the launcher. */
        public Launcher build() {
            return new Launcher(check());
        }

        private Builder check() {
            if (workers == 0) {
                throw new IllegalStateException("the number of workers is not set (setWorkers, -n)");
            }
            if (command == null) {
                throw new IllegalStateException("the command is not set (setCommand)");
            }
            return this;
        }
    }
}
