package dev.kiln.reliability;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.io.CSVIter;
import dev.kiln.io.Csv;
import dev.kiln.io.DataBatch;
import dev.kiln.io.MNISTIter;
import dev.kiln.io.Mnist;
import dev.kiln.module.Checkpoints;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.ParamsFile;
import dev.kiln.optimizer.SGD;
import dev.kiln.optimizer.Updater;
import dev.kiln.symbol.Symbol;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Shared drivers of the bad-input corpus ({@link BadInputCorpusTest}) and the parser fuzzer
 * ({@link ParserFuzzTest}): each feeds one input to one public entry point and releases
 * everything it created, so that a thrown exception leaves no native memory behind.
 */
final class BadInput {
    private BadInput() {}

    /** Native memory and handle counts at one moment. */
    record Native(long liveHandles, long bytes, long blocks) {
        static Native now() {
            Engine.MemoryStats s = Engine.memory(Context.cpu());
            return new Native(Engine.liveHandles(), s.currentBytes(), s.outstandingBlocks());
        }
    }

    /** Parses symbol JSON text and, when it parses, lists its arguments, round-trips it and runs native partial inference. */
    static void symbolJson(String text) {
        Symbol s = Symbol.fromJson(text);
        s.listArguments();
        s.listAuxiliaryStates();
        Symbol.fromJson(s.toJson());
        // the native side: load the graph and run partial shape/type inference on it
        s.inferShapePartial(Map.of());
    }

    /** Reads a .params file and converts every float32 entry to an NDArray and back. */
    static void params(Path file) throws IOException {
        List<ParamsFile.Entry> entries = ParamsFile.read(file);
        for (ParamsFile.Entry e : entries) {
            e.size();
        }
    }

    /** Loads a .params checkpoint file (arg:/aux: names) into NDArrays and frees them. */
    static void checkpointParams(Path file) throws IOException {
        try (Checkpoints.Checkpoint c = Checkpoints.loadParams(file, true)) {
            c.argParams().size();
        }
    }

    /** Loads a .states pickle into an SGD updater and frees the states. */
    static void states(byte[] pickle) {
        try (Updater u = new Updater(new SGD(Map.of("momentum", 0.9)))) {
            u.setStates(pickle);
            u.getStates(false);
        }
    }

    /** Reads a whole idx file. */
    static void idx(Path file) throws IOException {
        Mnist.Idx i = Mnist.readIdx(file);
        i.itemSize();
    }

    /** Builds an MNISTIter on an image and a label file and runs one epoch. */
    static int mnistIter(Path image, Path label, int batch) throws IOException {
        try (MNISTIter it = MNISTIter.builder().setImage(image).setLabel(label).setBatchSize(batch).optShuffle(false)
                .optSilent(true).build()) {
            return drain(it);
        }
    }

    /** Reads a CSV table. */
    static void csv(Path file) throws IOException {
        Csv.read(file);
    }

    /** Builds a CSVIter and runs one epoch. */
    static int csvIter(Path data, long[] dataShape, Path label, long[] labelShape, int batch) throws IOException {
        CSVIter.Builder b = CSVIter.builder().setDataCsv(data).setDataShape(dataShape).setBatchSize(batch);
        if (label != null) {
            b.optLabelCsv(label).optLabelShape(labelShape);
        }
        try (CSVIter it = b.build()) {
            return drain(it);
        }
    }

    private static int drain(dev.kiln.io.DataIter it) {
        int n = 0;
        while (it.hasNext()) {
            try (DataBatch b = it.next()) {
                n++;
                b.data().get(0).toFloatArray();
            }
            if (n > 10_000) {
                throw new AssertionError("iterator does not end");
            }
        }
        return n;
    }

    /** simple_bind with the given input shapes, then forward (and backward when train). */
    static void bindForward(Symbol sym, Map<String, long[]> shapes, boolean train) {
        bindForward(sym, shapes, Map.of(), train);
    }

    /** simple_bind with input shapes and dtypes (names as MXNet spells them), then forward (and backward when train). */
    static void bindForward(Symbol sym, Map<String, long[]> shapes, Map<String, String> types, boolean train) {
        Map<String, dev.kiln.ndarray.DType> t = new LinkedHashMap<>();
        types.forEach((k, v) -> t.put(k, dev.kiln.ndarray.DType.fromName(v)));
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : sym.listArguments()) {
            reqs.put(a, shapes.containsKey(a) || !train ? GradReq.NULL : GradReq.WRITE);
        }
        try (Executor ex = Executor.simpleBind(sym, Context.cpu(), shapes, t, reqs, new Executor.Options())) {
            ex.forward(train);
            if (train) {
                ex.backward();
            }
        }
    }

    static void closeAll(Map<String, NDArray> m) {
        if (m != null) {
            m.values().forEach(NDArray::close);
        }
    }

    static String read(Path p) throws IOException {
        return new String(Files.readAllBytes(p), StandardCharsets.UTF_8);
    }

    static long[] longs(Object o) {
        @SuppressWarnings("unchecked")
        List<Object> l = (List<Object>) o;
        long[] r = new long[l.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = ((Number) l.get(i)).longValue();
        }
        return r;
    }

    static Map<String, long[]> shapes(Object o) {
        Map<String, long[]> r = new LinkedHashMap<>();
        if (o != null) {
            @SuppressWarnings("unchecked")
            Map<String, Object> m = (Map<String, Object>) o;
            m.forEach((k, v) -> r.put(k, longs(v)));
        }
        return r;
    }

    static List<String> strings(Object o) {
        List<String> r = new ArrayList<>();
        if (o instanceof List<?> l) {
            l.forEach(x -> r.add(String.valueOf(x)));
        } else if (o != null) {
            r.add(String.valueOf(o));
        }
        return r;
    }
}
