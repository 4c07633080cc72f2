package dev.kiln.executor;

import dev.kiln.internal.Json;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The static memory plan of a bound executor: bytes planned by Kiln, bytes MXNet 1.x's planner
 * would plan for the same graph, bytes if every entry had its own buffer, and each storage block
 * with the entries sharing it. Immutable.
 */
public final class MemoryReport {
    private final String json;
    private final Map<String, Object> root;

    MemoryReport(String json) {
        this.json = json;
        this.root = Json.asObject(Json.parse(json), "memory report");
    }

    /** Bytes of all planned blocks (intermediates and gradient buffers not owned by the caller). */
    public long plannedBytes() {
        return Json.asLong(root.get("planned_bytes"), "planned_bytes");
    }

    /** What MXNet 1.x's planner (match range 16, 4 bytes per element) plans for the same graph. */
    public long mxnetPlannedBytes() {
        return Json.asLong(root.get("mxnet_planned_bytes"), "mxnet_planned_bytes");
    }

    /** Bytes if every planned entry had a buffer of its own. */
    public long naiveBytes() {
        return Json.asLong(root.get("naive_bytes"), "naive_bytes");
    }

    /** Scratch space shared by the kernels. */
    public long workspaceBytes() {
        return Json.asLong(root.get("workspace_bytes"), "workspace_bytes");
    }

    /** Bytes of the bound argument, gradient and aux arrays. */
    public long boundArrayBytes() {
        return Json.asLong(root.get("bound_array_bytes"), "bound_array_bytes");
    }

    /** Bytes of the arenas that hold this executor's planned blocks (its own or borrowed from a shared pool). */
    public long arenaBytes() {
        return Json.asLong(root.get("arena_bytes"), "arena_bytes");
    }

    /** Bytes of the arena this executor allocated (0 when every block fit into a shared executor's pool). */
    public long ownArenaBytes() {
        return Json.asLong(root.get("own_arena_bytes"), "own_arena_bytes");
    }

    /** Bytes of the workspace this executor allocated (0 when the pool's was large enough). */
    public long ownWorkspaceBytes() {
        return Json.asLong(root.get("own_workspace_bytes"), "own_workspace_bytes");
    }

    /** Bytes of the whole memory pool this executor belongs to (every arena and the workspace). */
    public long poolBytes() {
        return Json.asLong(root.get("pool_bytes"), "pool_bytes");
    }

    /** True when the executor was bound with a shared executor (see {@link Executor#bind(dev.kiln.symbol.Symbol,
     * dev.kiln.ndarray.Context, java.util.Map, java.util.Map, java.util.Map, java.util.Map, Executor.Options, Executor)}). */
    public boolean sharedPool() {
        return Boolean.TRUE.equals(root.get("shared_pool"));
    }

    /** Bytes of the monitor's snapshot arena (0 while the monitor is off; see {@link Executor#setMonitor}). */
    public long monitorBytes() {
        return Json.asLong(root.get("monitor_bytes"), "monitor_bytes");
    }

    /** Number of storage blocks. */
    public int numBlocks() {
        return (int) Json.asLong(root.get("num_blocks"), "num_blocks");
    }

    /** The entries sharing each block, in block order. */
    public List<List<String>> blockEntries() {
        List<List<String>> out = new ArrayList<>();
        for (Object b : Json.asArray(root.get("blocks"), "blocks")) {
            List<String> names = new ArrayList<>();
            for (Object e : Json.asArray(Json.asObject(b, "block").get("entries"), "entries")) {
                names.add(Json.asString(e, "entry"));
            }
            out.add(names);
        }
        return out;
    }

    /** Per entry: name, node, op, shape, dtype, storage block ("external"/"none"), write request, in-place input. */
    public List<Map<String, Object>> entries() {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Object e : Json.asArray(root.get("entries"), "entries")) {
            out.add(Json.asObject(e, "entry"));
        }
        return out;
    }

    /** The entry named {@code name} or null. */
    public Map<String, Object> entry(String name) {
        for (Map<String, Object> e : entries()) {
            if (name.equals(e.get("name"))) {
                return e;
            }
        }
        return null;
    }

    /** The raw JSON. */
    public String json() {
        return json;
    }

    /** A human-readable summary in MXNet's "Total N MB allocated" style plus Kiln's breakdown. */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder();
        b.append(String.format("Total %.3f MB allocated (Kiln plan); MXNet 1.x plan %.3f MB; naive %.3f MB; workspace %.3f MB; %d blocks%n",
                plannedBytes() / 1048576.0, mxnetPlannedBytes() / 1048576.0, naiveBytes() / 1048576.0, workspaceBytes() / 1048576.0,
                numBlocks()));
        List<List<String>> blocks = blockEntries();
        for (int i = 0; i < blocks.size(); i++) {
            b.append("  block ").append(i).append(": ").append(String.join(", ", blocks.get(i))).append('\n');
        }
        return b.toString();
    }
}
