package dev.kiln.gpu;

import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** GPU consistency cases of the Tensor operator family (see {@link GpuCase}). */
final class GpuTensorCases implements GpuCases {
    @Override
    public List<GpuCase> cases() {
        List<GpuCase> c = new ArrayList<>();
        Symbol x = Symbol.variable("x");
        Symbol y = Symbol.variable("y");
        c.add(GpuCase.graph("elemwise_add", Symbol.create("elemwise_add", "e", null, null, x, y),
                Map.of("x", new long[] {3, 5}, "y", new long[] {3, 5})).addTo());
        c.add(GpuCase.invoke("sgd_mom_update", "sgd_mom_update", Map.of("lr", 0.1, "momentum", 0.9, "wd", 0.01),
                new long[] {7}, new long[] {7}, new long[] {7}));
        return c;
    }
}
