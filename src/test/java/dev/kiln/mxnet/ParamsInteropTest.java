package dev.kiln.mxnet;

import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.util.PairList;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.ndarray.Shape;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * File interop with the real MXNet 1.9.1: {@code .params} files written by Kiln load in MXNet
 * ({@code MXNDArrayLoad}) and files written by MXNet ({@code MXNDArraySave}) load in Kiln, with
 * the same names, types, shapes and bytes; Kiln's symbol JSON parses in MXNet
 * ({@code MXSymbolCreateFromJSON}) with the same arguments, outputs and inferred shapes, and
 * MXNet's re-serialised JSON parses in Kiln.
 */
@ExtendWith(NoLeaks.class)
class ParamsInteropTest {
    @TempDir
    Path tmp;

    record Spec(String name, DType dtype, long[] shape) {}

    static final List<Spec> SPECS = List.of(
            new Spec("arg:fc1_weight", DType.FLOAT32, new long[] {3, 4}),
            new Spec("arg:fc1_bias", DType.FLOAT32, new long[] {3}),
            new Spec("arg:conv_weight", DType.FLOAT32, new long[] {2, 3, 2, 2}),
            new Spec("aux:bn_moving_var", DType.FLOAT64, new long[] {2, 5}),
            new Spec("arg:half", DType.FLOAT16, new long[] {2, 3}),
            new Spec("arg:brain", DType.BFLOAT16, new long[] {3, 2}),
            new Spec("arg:ids", DType.INT32, new long[] {5}),
            new Spec("arg:bytes", DType.UINT8, new long[] {7}),
            new Spec("arg:small", DType.INT8, new long[] {2, 2}),
            new Spec("arg:long", DType.INT64, new long[] {3}),
            new Spec("arg:one", DType.FLOAT32, new long[] {1}));

    static DataType djl(DType t) {
        return switch (t) {
            case FLOAT32 -> DataType.FLOAT32;
            case FLOAT64 -> DataType.FLOAT64;
            case FLOAT16 -> DataType.FLOAT16;
            case UINT8 -> DataType.UINT8;
            case INT32 -> DataType.INT32;
            case INT8 -> DataType.INT8;
            case INT64 -> DataType.INT64;
            case BFLOAT16 -> DataType.BFLOAT16;
        };
    }

    /** Random bytes that are valid values of the type (finite floats). */
    static byte[] randomBytes(Random rng, DType t, long n) {
        ByteBuffer b = ByteBuffer.allocate((int) (n * t.bytes())).order(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < n; i++) {
            switch (t) {
                case FLOAT32 -> b.putFloat((float) rng.nextGaussian());
                case FLOAT64 -> b.putDouble(rng.nextGaussian());
                // finite, normal halves: sign, exponent 1..29, mantissa
                case FLOAT16 -> b.putShort((short) ((rng.nextInt(2) << 15) | ((1 + rng.nextInt(29)) << 10) | rng.nextInt(1024)));
                // finite bfloat16: sign, exponent 1..254, mantissa
                case BFLOAT16 -> b.putShort((short) ((rng.nextInt(2) << 15) | ((1 + rng.nextInt(254)) << 7) | rng.nextInt(128)));
                case INT32 -> b.putInt(rng.nextInt());
                case INT64 -> b.putLong(rng.nextLong());
                default -> b.put((byte) rng.nextInt(256));
            }
        }
        return b.array();
    }

    static ai.djl.ndarray.NDArray mx(MxNDManager m, byte[] data, DType t, long[] shape) {
        ByteBuffer buf = ByteBuffer.allocateDirect(data.length).order(ByteOrder.nativeOrder());
        buf.put(data).flip();
        return m.create(buf, new ai.djl.ndarray.types.Shape(shape), djl(t));
    }

    @Test
    void kilnParamsLoadInMxnet() throws Exception {
        MxOracle.assumeAvailable();
        Random rng = new Random(1);
        Path file = tmp.resolve("kiln.params");
        Map<String, byte[]> want = new LinkedHashMap<>();
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager()) {
            Map<String, NDArray> arrays = new LinkedHashMap<>();
            for (Spec s : SPECS) {
                byte[] b = randomBytes(rng, s.dtype(), new Shape(s.shape()).size());
                want.put(s.name(), b);
                arrays.put(s.name(), NDArray.fromBytes(b, new Shape(s.shape()), s.dtype(), Context.cpu()));
            }
            NDArray.save(file, arrays);
            Map<String, ai.djl.ndarray.NDArray> got = MxOracle.load(m, file);
            assertEquals(List.copyOf(want.keySet()), List.copyOf(got.keySet()), "names in MXNet");
            for (Spec s : SPECS) {
                ai.djl.ndarray.NDArray g = got.get(s.name());
                if (s.dtype() == DType.BFLOAT16) {
                    // DJL 0.36 names MXNet's flag 12 (mshadow kBfloat16) "uint64" (so its raw byte view
                    // is wrong); MXNet itself reads it as bfloat16: its float32 conversion gives Kiln's values
                    try (NDArray k = arrays.get(s.name()).asType(DType.FLOAT32)) {
                        assertArrayEquals(k.toFloatArray(), g.toType(DataType.FLOAT32, true).toFloatArray(), s.name() + " values");
                    }
                } else {
                    assertEquals(djl(s.dtype()), g.getDataType(), s.name() + " type");
                    assertArrayEquals(want.get(s.name()), g.toByteArray(), s.name() + " bytes");
                }
                assertArrayEquals(s.shape(), g.getShape().getShape(), s.name() + " shape");
            }

            // an unnamed list
            Path list = tmp.resolve("list.params");
            NDArray.save(list, List.of(arrays.get("arg:fc1_weight"), arrays.get("aux:bn_moving_var")));
            Map<String, ai.djl.ndarray.NDArray> l = MxOracle.load(m, list);
            assertEquals(List.of("0", "1"), List.copyOf(l.keySet()));
            assertArrayEquals(want.get("arg:fc1_weight"), l.get("0").toByteArray());
            assertArrayEquals(want.get("aux:bn_moving_var"), l.get("1").toByteArray());
            assertArrayEquals(new long[] {2, 5}, l.get("1").getShape().getShape());
        }
    }

    @Test
    void mxnetParamsLoadInKiln() throws Exception {
        MxOracle.assumeAvailable();
        Random rng = new Random(2);
        Path mxFile = tmp.resolve("mxnet.params");
        Path kilnFile = tmp.resolve("kiln-copy.params");
        Map<String, byte[]> want = new LinkedHashMap<>();
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager()) {
            Map<String, ai.djl.ndarray.NDArray> arrays = new LinkedHashMap<>();
            for (Spec s : SPECS) {
                if (s.dtype() == DType.BFLOAT16) {
                    continue;  // DJL 0.36 sends bfloat16 as MXNet's flag 11 (uint64), which MXNet refuses
                }
                byte[] b = randomBytes(rng, s.dtype(), new Shape(s.shape()).size());
                want.put(s.name(), b);
                arrays.put(s.name(), mx(m, b, s.dtype(), s.shape()));
            }
            MxOracle.save(mxFile, arrays);
            Map<String, NDArray> got = NDArray.load(mxFile);
            assertEquals(List.copyOf(want.keySet()), List.copyOf(got.keySet()), "names in Kiln");
            for (Spec s : SPECS) {
                if (!want.containsKey(s.name())) {
                    continue;
                }
                NDArray g = got.get(s.name());
                assertEquals(s.dtype(), g.dtype(), s.name() + " type");
                assertArrayEquals(s.shape(), g.shape().dims(), s.name() + " shape");
                assertArrayEquals(want.get(s.name()), g.toBytes(), s.name() + " bytes");
            }
            // Kiln writing the same arrays gives MXNet's file byte for byte
            NDArray.save(kilnFile, got);
            byte[] mxBytes = Files.readAllBytes(mxFile);
            byte[] kBytes = Files.readAllBytes(kilnFile);
            assertEquals(mxBytes.length, kBytes.length, "file size, Kiln vs MXNet");
            assertArrayEquals(mxBytes, kBytes, "Kiln's .params bytes differ from MXNet's for the same arrays");
        }
    }

    /** MLP as in MNIST training. */
    static Symbol mlp() {
        return dev.kiln.examples.MnistMlp.network();
    }

    /** A graph with more kinds of nodes: multi-output, extra parameters, grouped heads. */
    static Symbol mixed() {
        Symbol data = Symbol.variable("data");
        Symbol fc = Symbol.fullyConnected("fc", data, 12, true);
        Symbol act = Symbol.leakyReLU("prelu", fc, "prelu");
        Symbol parts = Symbol.sliceChannel("split", act, 3);
        Symbol cat = Symbol.concat("cat", 1, parts.get(2), parts.get(0));
        Symbol r = Symbol.reshape("rs", cat, 0, 2, -1);
        Symbol t = Symbol.transpose("tr", r, 0, 2, 1);
        Symbol sm = Symbol.softmax("sm", t, 1, 2.0);
        Symbol s = Symbol.sum("total", sm, new int[] {1}, false, false);
        Symbol d = Symbol.dot("dt", s, s, false, true);
        Symbol act2 = Symbol.activation("act2", d, "tanh");
        Symbol loss = Symbol.linearRegressionOutput("loss", act2);
        return Symbol.group(Symbol.blockGrad("out", act2), loss, parts.get(1));
    }

    @Test
    void kilnSymbolJsonLoadsInMxnet() {
        MxOracle.assumeAvailable();
        check(mlp(), Map.of("data", new long[] {128, 784}));
        check(mixed(), Map.of("data", new long[] {4, 3, 2}));
    }

    private void check(Symbol sym, Map<String, long[]> inputs) {
        String json = sym.toJson();
        try (MxNDManager m = MxOracle.newManager(); ai.djl.mxnet.engine.Symbol mxs = MxOracle.symbol(m, json)) {
            assertEquals(sym.listArguments(), Arrays.asList(mxs.getArgNames()), "arguments");
            assertEquals(sym.listAuxiliaryStates(), Arrays.asList(mxs.getAuxNames()), "aux states");
            assertEquals(sym.listOutputs(), Arrays.asList(mxs.getOutputNames()), "outputs");

            // infer shapes in both from the data shape alone (DJL 0.36's inferShape is only
            // correct for one input: it passes a non-cumulative arg_ind_ptr otherwise)
            String first = inputs.keySet().iterator().next();
            InferResult k = sym.inferShape(inputs);
            Map<String, ai.djl.ndarray.types.Shape> ms =
                    mxs.inferShape(new PairList<>(List.of(first), List.of(new ai.djl.ndarray.types.Shape(inputs.get(first)))));
            List<String> args = sym.listArguments();
            for (int i = 0; i < args.size(); i++) {
                assertArrayEquals(ms.get(args.get(i)).getShape(), k.argShapes().get(i), "shape of " + args.get(i));
            }
            List<String> outs = sym.listOutputs();
            for (int i = 0; i < outs.size(); i++) {
                assertArrayEquals(ms.get(outs.get(i)).getShape(), k.outShapes().get(i), "shape of " + outs.get(i));
            }

            // MXNet's own serialisation of the graph parses in Kiln to the same graph
            Symbol back = Symbol.fromJson(mxs.toJsonString());
            assertEquals(sym.listArguments(), back.listArguments());
            assertEquals(sym.listOutputs(), back.listOutputs());
            InferResult k2 = back.inferShape(inputs);
            for (int i = 0; i < k.outShapes().size(); i++) {
                assertArrayEquals(k.outShapes().get(i), k2.outShapes().get(i));
            }
            for (int i = 0; i < k.argShapes().size(); i++) {
                assertArrayEquals(k.argShapes().get(i), k2.argShapes().get(i));
            }
        }
    }
}
