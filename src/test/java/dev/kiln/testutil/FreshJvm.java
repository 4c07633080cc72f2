package dev.kiln.testutil;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Runs a test class's {@code main} in a JVM of its own, on the test class path: for measurements
 * and settings chosen once per process (resident memory, {@code KILN_SIMD}).
 */
public final class FreshJvm {
    private FreshJvm() {}

    /** Exit status and the merged stdout and stderr of the child JVM. */
    public record Result(int exitCode, String output) {}

    /**
     * Runs {@code main.main(args)} with the extra JVM options and environment variables; waits for it.
     */
    public static Result run(Class<?> main, List<String> jvmOptions, Map<String, String> env, String... args)
            throws IOException, InterruptedException {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-cp", cp, main.getName()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Result(p.waitFor(), out);
    }
}
