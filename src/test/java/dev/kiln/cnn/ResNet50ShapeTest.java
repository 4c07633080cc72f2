package dev.kiln.cnn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.examples.CnnNets;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

/**
 * The ResNet-50 of the GPU benchmarks has torchvision's architecture: 25,557,032 trainable
 * parameters (torchvision.models.resnet50().parameters(), BatchNorm's gamma and beta included),
 * 53 BatchNorm layers (moving mean and variance: 2 x 26,560 auxiliary values) and a (N, 1000) output.
 */
class ResNet50ShapeTest {
    @Test
    void resnet50MatchesTorchvisionsParameterCount() {
        Symbol net = CnnNets.resnet50(1000);
        InferResult r = net.inferShape(Map.of("data", new long[] {2, 3, 224, 224}, "softmax_label", new long[] {2}));
        List<String> args = net.listArguments();
        long params = 0;
        for (int i = 0; i < args.size(); i++) {
            if (args.get(i).equals("data") || args.get(i).equals("softmax_label")) {
                continue;
            }
            params += count(r.argShapes().get(i));
        }
        assertEquals(25_557_032L, params);
        long aux = 0;
        for (long[] s : r.auxShapes()) {
            aux += count(s);
        }
        assertEquals(53 * 2, net.listAuxiliaryStates().size());
        assertEquals(2 * 26_560L, aux);
        assertArrayEquals(new long[] {2, 1000}, r.outShapes().get(0));
    }

    private static long count(long[] s) {
        long n = 1;
        for (long d : s) {
            n *= d;
        }
        return n;
    }
}
