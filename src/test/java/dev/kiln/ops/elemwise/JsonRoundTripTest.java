package dev.kiln.ops.elemwise;

import static dev.kiln.ops.elemwise.ElemTesting.BOTH;
import static dev.kiln.ops.elemwise.ElemTesting.forward;
import static dev.kiln.ops.elemwise.ElemTesting.rand;
import static dev.kiln.ops.elemwise.ElemTesting.shape;
import static dev.kiln.ops.elemwise.ElemTesting.values;
import static dev.kiln.testutil.OpTesting.shapes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Every op of the family survives a symbol JSON round trip with its parameters (same attributes, same bits). */
@ExtendWith(NoLeaks.class)
class JsonRoundTripTest {

    @Test
    void everyOpRoundTrips() {
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.variable("b");
        Symbol r = Symbol.variable("r");
        List<Symbol> nodes = List.of(
                Symbol.elemwiseAdd("n1", a, b), Symbol.elemwiseSub("n2", a, b), Symbol.elemwiseMul("n3", a, b),
                Symbol.elemwiseDiv("n4", a, b), Symbol.maximum("n5", a, b), Symbol.minimum("n6", a, b),
                Symbol.power("n7", a, b),
                Symbol.broadcastAdd("n8", a, r), Symbol.broadcastSub("n9", a, r), Symbol.broadcastMul("n10", a, r),
                Symbol.broadcastDiv("n11", a, r), Symbol.broadcastMaximum("n12", a, r), Symbol.broadcastMinimum("n13", a, r),
                Symbol.broadcastPower("n14", a, r),
                Symbol.plusScalar("n15", a, 0.75), Symbol.minusScalar("n16", a, 1e-7), Symbol.rminusScalar("n17", a, -3),
                Symbol.mulScalar("n18", a, 0.1), Symbol.divScalar("n19", a, 1e10), Symbol.rdivScalar("n20", a, 2),
                Symbol.maximumScalar("n21", a, 0.5), Symbol.minimumScalar("n22", a, 1.25), Symbol.powerScalar("n23", a, 2.5),
                Symbol.rpowerScalar("n24", a, 1.7),
                Symbol.negative("n25", a), Symbol.exp("n26", a), Symbol.log("n27", a), Symbol.sqrt("n28", a),
                Symbol.square("n29", a), Symbol.abs("n30", a), Symbol.clip("n31", a, 0.6, 1.4),
                Symbol.sum("n32", a), Symbol.mean("n33", a, 1, true), Symbol.max("n34", a, new int[] {0, -1}, false, true),
                Symbol.min("n35", a, new int[] {}, true, false));
        Symbol g = Symbol.group(nodes);
        Symbol back = Symbol.fromJson(g.toJson());
        assertEquals(g.toJson(), back.toJson(), "JSON is stable through a round trip");
        assertEquals(g.listArguments(), back.listArguments());
        assertEquals(g.listOutputs(), back.listOutputs());
        Map<String, Map<String, String>> attrs = back.attrDict();
        assertEquals("0.75", attrs.get("n15").get("scalar"));
        assertEquals("True", attrs.get("n33").get("keepdims"));
        Map<String, long[]> sh = shapes("a", shape(2, 3, 5), "b", shape(2, 3, 5), "r", shape(3, 1));
        Map<String, double[]> v = values("a", rand(30, 0.5, 2, 0, 1), "b", rand(30, 0.5, 2, 0, 2), "r", rand(3, 0.5, 2, 0, 3));
        for (DType t : BOTH) {
            ExecTesting.Out x = forward(g, sh, v, t);
            ExecTesting.Out y = forward(back, sh, v, t);
            for (int i = 0; i < nodes.size(); i++) {
                assertArrayEquals(x.s(i), y.s(i), "shape of output " + i);
                assertArrayEquals(x.v(i), y.v(i), "output " + i + " (" + g.listOutputs().get(i) + ") " + t);
            }
        }
    }
}
