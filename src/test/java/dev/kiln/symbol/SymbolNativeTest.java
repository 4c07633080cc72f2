package dev.kiln.symbol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.DType;
import dev.kiln.op.OpInfo;
import dev.kiln.op.Ops;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Symbols and the op registry view against the native registry and the native inference pass. */
class SymbolNativeTest {

    @Test
    void registryDescribesOpsForTheirAttributes() {
        List<String> ops = Ops.list();
        assertTrue(ops.contains("FullyConnected"), ops.toString());
        OpInfo fc = Ops.info("FullyConnected", Map.of("num_hidden", "4"));
        assertEquals("FullyConnected", fc.name());
        assertEquals(List.of("data", "weight", "bias"), fc.inputs());
        assertEquals(List.of("output"), fc.outputs());
        assertEquals(1, fc.numVisibleOutputs());
        assertEquals(List.of("data", "weight"), Ops.info("FullyConnected", Map.of("num_hidden", "4", "no_bias", "True")).inputs());
        assertEquals(3, Ops.info("Concat", Map.of("num_args", "3")).inputs().size());
        assertEquals("Flatten", Ops.info("flatten").name());
        OpInfo.Param p = fc.param("num_hidden");
        assertTrue(p != null && p.isRequired(), String.valueOf(p));
        assertTrue(Ops.info("SoftmaxOutput").isLoss());
        // hidden attributes are not parameters and share the cache entry
        assertEquals(fc, Ops.info("FullyConnected", Map.of("num_hidden", "4", "__lr_mult__", "0")));
        KilnException e = assertThrows(KilnException.class, () -> Ops.info("NoSuchOp"));
        assertEquals("operator NoSuchOp is not supported", e.getMessage());
        assertFalse(Ops.isSupported("NoSuchOp"));
    }

    @Test
    void mlpArgumentsOutputsAndJson() {
        Symbol net = SymbolTest.mlp();
        assertEquals(List.of("data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "softmax_label"),
                net.listArguments());
        assertEquals(List.of("softmax_output"), net.listOutputs());
        String json = net.toJson();
        assertEquals(json, Symbol.fromJson(json).toJson());
    }

    @Test
    void mlpShapeAndTypeInference() {
        Symbol net = SymbolTest.mlp();
        InferResult r = net.inferShape(Map.of("data", new long[] {64, 784}));
        assertTrue(r.isComplete());
        List<long[]> args = r.argShapes();
        long[][] expected = {{64, 784}, {128, 784}, {128}, {10, 128}, {10}, {64}};
        for (int i = 0; i < expected.length; i++) {
            assertArrayEquals(expected[i], args.get(i), net.listArguments().get(i));
        }
        assertArrayEquals(new long[] {64, 10}, r.outShapeMap().get("softmax_output"));
        assertEquals(List.of(), r.auxShapes());
        assertEquals(DType.FLOAT32, r.argTypeMap().get("fc1_weight"));

        InferResult partial = net.inferShapePartial(Map.of());
        assertFalse(partial.isComplete());
        assertFalse(partial.shapesComplete());

        InferResult t = net.inferType(Map.of("data", DType.FLOAT64));
        assertEquals(DType.FLOAT64, t.outTypes().get(0));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> net.inferShape(Map.of("dat", new long[] {1, 2})));
        assertTrue(e.getMessage().contains("'dat'"), e.getMessage());
        assertThrows(KilnException.class, () -> net.inferShape(Map.of()));
        assertThrows(KilnException.class, () -> net.inferShape(Map.of("data", new long[] {64, 784},
                "fc1_weight", new long[] {7, 7})));
    }

    @Test
    void everyTypedFactoryComposesWithTheNativeRegistry() {
        Symbol x = Symbol.variable("x");
        Symbol y = Symbol.variable("y");
        List<Symbol> all = new ArrayList<>();
        all.add(Symbol.fullyConnected(null, x, 3, true, false));
        all.add(Symbol.activation(null, x, "tanh"));
        all.add(Symbol.leakyReLU(null, x, "leaky", 0.1));
        all.add(Symbol.leakyReLU(null, x, "prelu"));
        all.add(Symbol.softmaxOutputBuilder().setData(x).optGradScale(2).optIgnoreLabel(0).optUseIgnore(true)
                .optNormalization("valid").optMultiOutput(false).optPreserveShape(false).optOutGrad(false)
                .optSmoothAlpha(0.1).build());
        all.add(Symbol.linearRegressionOutput(null, x));
        all.add(Symbol.logisticRegressionOutput(null, x, y, 0.5));
        all.add(Symbol.maeRegressionOutput(null, x));
        all.add(Symbol.softmax(null, x, 1, 2.0));
        all.add(Symbol.logSoftmax(null, x, -1));
        all.add(Symbol.softmaxActivation(null, x, "channel"));
        all.add(Symbol.flatten(null, x));
        all.add(Symbol.reshape(null, x, true, -1, 0));
        all.add(Symbol.elemwiseAdd(null, x, y));
        all.add(Symbol.elemwiseSub(null, x, y));
        all.add(Symbol.elemwiseMul(null, x, y));
        all.add(Symbol.elemwiseDiv(null, x, y));
        all.add(Symbol.maximum(null, x, y));
        all.add(Symbol.minimum(null, x, y));
        all.add(Symbol.power(null, x, y));
        all.add(Symbol.broadcastAdd(null, x, y));
        all.add(Symbol.broadcastSub(null, x, y));
        all.add(Symbol.broadcastMul(null, x, y));
        all.add(Symbol.broadcastDiv(null, x, y));
        all.add(Symbol.broadcastMaximum(null, x, y));
        all.add(Symbol.broadcastMinimum(null, x, y));
        all.add(Symbol.broadcastPower(null, x, y));
        all.add(Symbol.plusScalar(null, x, 1));
        all.add(Symbol.minusScalar(null, x, 1));
        all.add(Symbol.rminusScalar(null, x, 1));
        all.add(Symbol.mulScalar(null, x, 1));
        all.add(Symbol.divScalar(null, x, 1));
        all.add(Symbol.rdivScalar(null, x, 1));
        all.add(Symbol.powerScalar(null, x, 2));
        all.add(Symbol.rpowerScalar(null, x, 2));
        all.add(Symbol.maximumScalar(null, x, 0));
        all.add(Symbol.minimumScalar(null, x, 0));
        all.add(x.plus(y).minus(y).mul(y).div(y).pow(y).plus(1).minus(1).rminus(1).mul(2).div(2).rdiv(2).pow(2)
                .rpow(2).negative());
        all.add(Symbol.negative(null, x));
        all.add(Symbol.exp(null, x));
        all.add(Symbol.log(null, x));
        all.add(Symbol.sqrt(null, x));
        all.add(Symbol.square(null, x));
        all.add(Symbol.abs(null, x));
        all.add(Symbol.clip(null, x, -1, 1));
        all.add(Symbol.sum(null, x, new int[] {0, 1}, true, true));
        all.add(Symbol.mean(null, x, 1, false));
        all.add(Symbol.max(null, x));
        all.add(Symbol.min(null, x, 0, true));
        all.add(Symbol.dropout(null, x, 0.2, "always"));
        all.add(Symbol.blockGrad(null, x));
        all.add(Symbol.stopGradient(null, x));
        all.add(Symbol.identity(null, x));
        all.add(Symbol.concat(null, 0, x, y));
        all.add(Symbol.sliceChannel(null, x, 2, 0, false).get(1));
        all.add(Symbol.elementWiseSum(null, x, y, x));
        all.add(Symbol.addN(null, x, y));
        all.add(Symbol.transpose(null, x, 1, 0));
        all.add(Symbol.expandDims(null, x, 0));
        all.add(Symbol.dot(null, x, y, false, true));
        if (Ops.isSupported("MakeLoss")) {
            all.add(Symbol.makeLoss(null, x));
        } else {
            KilnException e = assertThrows(KilnException.class, () -> Symbol.makeLoss(null, x));
            assertEquals("operator MakeLoss is not supported", e.getMessage());
        }
        Symbol g = Symbol.group(all);
        String json = g.toJson();
        assertEquals(json, Symbol.fromJson(json).toJson());
        assertEquals(g.listOutputs(), Symbol.fromJson(json).listOutputs());
    }

    @Test
    void batchNormAuxStatesWhenRegistered() {
        assumeTrue(Ops.isSupported("BatchNorm"), "BatchNorm is not registered natively");
        Symbol bn = Symbol.builder("BatchNorm").name("bn").input(Symbol.variable("data")).build();
        assertEquals(List.of("data", "bn_gamma", "bn_beta"), bn.listArguments());
        assertEquals(List.of("bn_moving_mean", "bn_moving_var"), bn.listAuxiliaryStates());
        assertTrue(bn.toJson().contains("[3, 0, 1], [4, 0, 1]"));
    }

    private static final Pattern UNSUPPORTED = Pattern.compile("operator (\\S+) is not supported");

    @Test
    void checkpointSymbolsParseOrNameTheMissingOperator() throws Exception {
        for (Path f : SymbolFiles.all()) {
            String text = Files.readString(f);
            Symbol s;
            try {
                s = Symbol.load(f);
            } catch (KilnException e) {
                Matcher m = UNSUPPORTED.matcher(e.getMessage());
                assertTrue(m.find(), f + ": " + e.getMessage());
                String op = m.group(1);
                assertFalse(Ops.isSupported(op), op);
                assertTrue(text.contains("\"op\": \"" + op + "\""), f + " does not use " + op);
                continue;
            }
            String out = s.toJson();
            if (SymbolFiles.isCurrentFormat(text)) {
                SymbolFiles.assertEquivalent(text, out, f.toString());
            }
            assertEquals(out, Symbol.fromJson(out).toJson(), f.toString());
        }
    }

    @Test
    void djlMlpParsesAndInfersShapes() throws Exception {
        Symbol s = Symbol.load(SymbolFiles.dir().resolve("djl-symbols/mlp-symbol.json"));
        String p = "hybridsequential0_";
        assertEquals(List.of("data", p + "dense0_weight", p + "dense0_bias", p + "dense1_weight", p + "dense1_bias",
                p + "dense2_weight", p + "dense2_bias"), s.listArguments());
        assertEquals(List.of(p + "dense2_fwd_output"), s.listOutputs());
        InferResult r = s.inferShape(Map.of("data", new long[] {2, 784}));
        assertArrayEquals(new long[] {128, 784}, r.argShapeMap().get(p + "dense0_weight"));
        assertArrayEquals(new long[] {2, 10}, r.outShapes().get(0));
        assertEquals("1.0", s.getChildren().get(1).attr("lr_mult"));
        assertNull(s.getChildren().get(0).attr("lr_mult"));
    }
}
