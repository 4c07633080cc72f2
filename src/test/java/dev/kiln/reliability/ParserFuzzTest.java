package dev.kiln.reliability;

import dev.kiln.engine.Engine;
import dev.kiln.engine.KilnException;
import dev.kiln.engine.KilnOutOfMemoryException;
import dev.kiln.io.MalformedDataException;
import dev.kiln.ndarray.ParamsFile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Issue 8: a bounded, deterministic mutational fuzzer for the input parsers (symbol JSON, also
 * bound and run when it parses,
 * .params, .states pickles, MNIST idx, CSV). For each parser it first replays the kept seed
 * corpus in {@code src/test/resources/fuzz-corpus/<parser>/} (regression inputs included), then
 * runs a fixed number of mutations (seeded: bit flips, byte overwrites, truncations, boundary
 * integers in both byte orders, chunk deletion/duplication, splices between seeds). Every input
 * must parse or throw one of the parser's documented exception classes (exact class, so an
 * {@code ArrayIndexOutOfBoundsException} or {@code NumberFormatException} fails), never an
 * {@link Error}, finish within a timeout and leave native handle/byte counts unchanged. A failing
 * input is written to {@code target/fuzz-failures/} to be added to the seed corpus after its fix.
 */
class ParserFuzzTest {
    static final Path CORPUS = Path.of("src/test/resources/fuzz-corpus");
    static final Path FAILURES = Path.of("target/fuzz-failures");
    static final long SEED = Long.getLong("kiln.fuzz.seed", 0x5EED_8L);
    static final int ITERATIONS = Integer.getInteger("kiln.fuzz.iterations", 2000);
    static final long TIMEOUT_S = 20;

    private static ExecutorService worker;
    private static Path tmp;

    interface Parser {
        void parse(byte[] input) throws Exception;
    }

    @BeforeAll
    static void start() throws IOException {
        Engine.init();
        worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "parser-fuzz");
            t.setDaemon(true);
            return t;
        });
        tmp = Files.createTempDirectory("kiln-fuzz");
    }

    @AfterAll
    static void stop() throws IOException {
        worker.shutdownNow();
        try (Stream<Path> s = Files.list(tmp)) {
            for (Path p : s.toList()) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(tmp);
    }

    @Test
    void symbolJson() throws Exception {
        fuzz("symbol-json", 1, in -> BadInput.symbolJson(new String(in, StandardCharsets.UTF_8)),
                Set.of(IllegalArgumentException.class, KilnException.class));
    }

    /**
     * Mutated symbol JSON that parses is bound with data (1, 1, 28, 28) and run forward and
     * backward, so mutated attributes reach the native kernels; graphs whose arrays would take
     * more than 64 MB are only shape-inferred (the allocator's own limit is tested elsewhere).
     */
    @Test
    void symbolBind() throws Exception {
        fuzz("symbol-json", 8, in -> {
            dev.kiln.symbol.Symbol s = dev.kiln.symbol.Symbol.fromJson(new String(in, StandardCharsets.UTF_8));
            java.util.Map<String, long[]> shapes = new java.util.LinkedHashMap<>();
            if (s.listArguments().contains("data")) {
                shapes.put("data", new long[] {1, 1, 28, 28});
            }
            dev.kiln.symbol.InferResult r = s.inferShape(shapes);
            double elems = 0;  // double: sizes of mutated graphs may overflow a long
            for (List<long[]> group : List.of(r.argShapes(), r.auxShapes(), r.outShapes())) {
                for (long[] d : group) {
                    double n = 1;
                    for (long x : d) {
                        n *= Math.max(x, 1);
                    }
                    elems += n;
                }
            }
            if (elems <= (16L << 20)) {
                BadInput.bindForward(s, shapes, true);
            }
        }, Set.of(IllegalArgumentException.class, KilnException.class, KilnOutOfMemoryException.class));
    }

    @Test
    void params() throws Exception {
        fuzz("params", 2, in -> {
            for (ParamsFile.Entry e : ParamsFile.read(in)) {
                e.size();
            }
        }, Set.of(IllegalArgumentException.class));
    }

    /** .params through NDArray.load: every entry becomes a native array (which must be freed on failure). */
    @Test
    void paramsToNative() throws Exception {
        fuzz("params", 3, in -> {
            Path f = tmp.resolve("fuzz.params");
            Files.write(f, in);
            BadInput.closeAll(dev.kiln.ndarray.NDArray.load(f));
        }, Set.of(IOException.class, KilnOutOfMemoryException.class));
    }

    @Test
    void states() throws Exception {
        fuzz("states", 4, BadInput::states, Set.of(IllegalArgumentException.class));
    }

    @Test
    void mnistIdx() throws Exception {
        fuzz("mnist-idx", 5, in -> {
            Path f = tmp.resolve("fuzz.idx");
            Files.write(f, in);
            BadInput.idx(f);
        }, Set.of(IOException.class));
    }

    @Test
    void csv() throws Exception {
        fuzz("csv", 6, in -> {
            Path f = tmp.resolve("fuzz.csv");
            Files.write(f, in);
            BadInput.csv(f);
        }, Set.of(IOException.class, MalformedDataException.class));
    }

    /** CSV through CSVIter (data_shape 3, batches of 2) so row-length and batching checks are fuzzed too. */
    @Test
    void csvIter() throws Exception {
        fuzz("csv", 7, in -> {
            Path f = tmp.resolve("fuzz-iter.csv");
            Files.write(f, in);
            BadInput.csvIter(f, new long[] {3}, null, null, 2);
        }, Set.of(IOException.class, MalformedDataException.class));
    }

    private void fuzz(String name, long salt, Parser parser, Set<Class<?>> allowed) throws Exception {
        List<byte[]> seeds = new ArrayList<>();
        try (Stream<Path> s = Files.list(CORPUS.resolve(name))) {
            for (Path p : s.sorted().toList()) {
                seeds.add(Files.readAllBytes(p));
            }
        }
        assertFalse(seeds.isEmpty(), "no seeds for " + name);
        BadInput.Native start = BadInput.Native.now();
        Random rnd = new Random(SEED * 31 + salt);
        int parsed = 0;
        int rejected = 0;
        int total = seeds.size() + ITERATIONS;
        for (int i = 0; i < total; i++) {
            byte[] input = i < seeds.size() ? seeds.get(i) : mutate(rnd, seeds, name.equals("symbol-json") || name.equals("csv"));
            Throwable t = runOne(parser, input, name, i);
            if (t == null) {
                parsed++;
            } else if (allowed.contains(t.getClass())) {
                rejected++;
            } else {
                Path saved = save(name, i, input);
                throw new AssertionError(name + " input " + i + " (saved to " + saved + ") threw an undocumented " + t, t);
            }
            BadInput.Native now = BadInput.Native.now();
            if (!now.equals(start)) {
                Path saved = save(name, i, input);
                fail(name + " input " + i + " (saved to " + saved + ") leaked native memory: " + start + " -> " + now);
            }
        }
        System.out.printf("fuzz %-11s salt %d: %d seeds + %d mutations = %d inputs, %d parsed, %d rejected%n", name, salt,
                seeds.size(), ITERATIONS, total, parsed, rejected);
        assertEquals(total, parsed + rejected);
    }

    private static Throwable runOne(Parser parser, byte[] input, String name, int i) throws Exception {
        Future<?> f = worker.submit(() -> {
            parser.parse(input);
            return null;
        });
        try {
            f.get(TIMEOUT_S, TimeUnit.SECONDS);
            return null;
        } catch (TimeoutException e) {
            f.cancel(true);
            Path saved = save(name, i, input);
            worker.shutdownNow();
            worker = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "parser-fuzz");
                t.setDaemon(true);
                return t;
            });
            fail(name + " input " + i + " (saved to " + saved + ") did not finish within " + TIMEOUT_S + " s");
            return null;
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }

    private static Path save(String name, int i, byte[] input) throws IOException {
        Files.createDirectories(FAILURES);
        Path p = FAILURES.resolve(name + "-" + SEED + "-" + i + ".bin");
        Files.write(p, input);
        return p;
    }

    // ---- mutations ---------------------------------------------------------------------------

    private static final long[] BOUNDARY = {0, 1, -1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFFL,
        0x80000000L, 0xFFFFFFFFL, 0x100000000L, Long.MAX_VALUE, Long.MIN_VALUE, 1L << 40, 1L << 62, 0x112, 0xF993FAC9L};
    private static final String[] TOKENS = {"0", "-1", "2147483647", "-2147483648", "4294967296", "9223372036854775807",
        "1e308", "1e400", "NaN", "-0", "null", "true", "[]", "{}", "\"\"", "\"null\"", ",", ":", "[", "]", "{", "}", "\"",
        "\\u0000", "\\ud800", "\n", "(", ")", "(0, 0)", "(-1,)", "nan", "inf"};

    static byte[] mutate(Random r, List<byte[]> seeds, boolean text) {
        byte[] b = seeds.get(r.nextInt(seeds.size())).clone();
        int n = 1 + r.nextInt(r.nextInt(8) == 0 ? 8 : 2);
        for (int k = 0; k < n; k++) {
            b = mutateOnce(r, b, seeds, text);
        }
        return b;
    }

    private static byte[] mutateOnce(Random r, byte[] b, List<byte[]> seeds, boolean text) {
        int len = b.length;
        int pos = len == 0 ? 0 : r.nextInt(len);
        switch (r.nextInt(text ? 9 : 8)) {
            case 0: // bit flips
                if (len > 0) {
                    for (int j = 1 + r.nextInt(4); j > 0; j--) {
                        int p = r.nextInt(len);
                        b[p] ^= (byte) (1 << r.nextInt(8));
                    }
                }
                return b;
            case 1: // random byte
                if (len > 0) {
                    b[pos] = (byte) r.nextInt(256);
                }
                return b;
            case 2: // truncate
                return Arrays.copyOf(b, len == 0 ? 0 : r.nextInt(len));
            case 3: // overwrite with a boundary integer (1/2/4/8 bytes, either byte order)
            case 4: { // insert a boundary integer
                long v = BOUNDARY[r.nextInt(BOUNDARY.length)];
                int w = 1 << r.nextInt(4);
                byte[] x = new byte[w];
                boolean le = r.nextBoolean();
                for (int j = 0; j < w; j++) {
                    x[le ? j : w - 1 - j] = (byte) (v >>> (8 * j));
                }
                if (text) {
                    x = Long.toString(r.nextBoolean() ? v : (int) v).getBytes(StandardCharsets.US_ASCII);
                }
                return r.nextInt(5) < 3 ? overwrite(b, pos, x) : insert(b, pos, x);
            }
            case 5: { // delete a chunk
                if (len == 0) {
                    return b;
                }
                int cl = 1 + r.nextInt(Math.min(len - pos, 16));
                byte[] o = new byte[len - cl];
                System.arraycopy(b, 0, o, 0, pos);
                System.arraycopy(b, pos + cl, o, pos, len - pos - cl);
                return o;
            }
            case 6: { // duplicate a chunk
                if (len == 0) {
                    return b;
                }
                int cl = 1 + r.nextInt(Math.min(len - pos, 32));
                return insert(b, pos, Arrays.copyOfRange(b, pos, pos + cl));
            }
            case 7: { // splice: a prefix of this input and a suffix of another seed
                byte[] other = seeds.get(r.nextInt(seeds.size()));
                int cut = other.length == 0 ? 0 : r.nextInt(other.length);
                byte[] o = Arrays.copyOf(b, pos + other.length - cut);
                System.arraycopy(other, cut, o, pos, other.length - cut);
                return o;
            }
            default: { // text: insert or overwrite a JSON / CSV token
                byte[] x = TOKENS[r.nextInt(TOKENS.length)].getBytes(StandardCharsets.UTF_8);
                return r.nextBoolean() ? insert(b, pos, x) : overwrite(b, pos, x);
            }
        }
    }

    private static byte[] overwrite(byte[] b, int pos, byte[] x) {
        byte[] o = b.length < pos + x.length ? Arrays.copyOf(b, pos + x.length) : b;
        System.arraycopy(x, 0, o, pos, x.length);
        return o;
    }

    private static byte[] insert(byte[] b, int pos, byte[] x) {
        byte[] o = new byte[b.length + x.length];
        System.arraycopy(b, 0, o, 0, pos);
        System.arraycopy(x, 0, o, pos, x.length);
        System.arraycopy(b, pos, o, pos + x.length, b.length - pos);
        return o;
    }
}
