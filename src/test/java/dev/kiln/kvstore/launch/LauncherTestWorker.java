package dev.kiln.kvstore.launch;

import java.nio.file.Path;

/**
 * The rank program of {@link LauncherTest}, started in its own JVM by the launcher. It uses only the
 * JDK, so its classpath is just the test classes. Modes (first argument):
 * <ul>
 *   <li>{@code env}: prints its launcher environment, its PID and working directory, exits 0;
 *   <li>{@code fail R CODE}: rank R prints a line and exits CODE; the other ranks print {@code
 *       waiting} and sleep 60 s (the launcher must stop them);
 *   <li>{@code sleep}: prints {@code ready} and sleeps 60 s;
 *   <li>{@code fail-first R CODE}: on the first attempt ({@code KILN_RESTART=0}) rank R exits CODE;
 *       otherwise every rank exits 0.
 * </ul>
 */
public final class LauncherTestWorker {
    private LauncherTestWorker() {
    }

    public static void main(String[] args) throws InterruptedException {
        int rank = Integer.parseInt(System.getenv("RANK"));
        switch (args[0]) {
            case "env" -> {
                StringBuilder s = new StringBuilder("env");
                for (String v : new String[] {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                    "MASTER_PORT", "KILN_RESTART", "KILN_TEST_EXTRA"}) {
                    s.append(' ').append(v).append('=').append(System.getenv(v));
                }
                System.out.println(s);
                System.out.println("pid " + ProcessHandle.current().pid());
                System.err.println("cwd " + Path.of("").toAbsolutePath());
            }
            case "fail" -> failOrWait(rank, Integer.parseInt(args[1]), Integer.parseInt(args[2]));
            case "sleep" -> {
                System.out.println("ready");
                System.out.flush();
                Thread.sleep(60_000);
            }
            case "fail-first" -> {
                if (rank == Integer.parseInt(args[1]) && "0".equals(System.getenv("KILN_RESTART"))) {
                    System.out.println("failing on the first attempt");
                    System.exit(Integer.parseInt(args[2]));
                }
                System.out.println("attempt " + System.getenv("KILN_RESTART") + " ok");
            }
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }

    private static void failOrWait(int rank, int failing, int code) throws InterruptedException {
        if (rank == failing) {
            System.out.println("rank " + rank + " about to fail");
            System.err.println("the cause, on stderr");
            System.exit(code);
        }
        System.out.println("waiting");
        System.out.flush();
        Thread.sleep(60_000);
    }
}
