package dev.kiln.kvstore.gloo;

import dev.kiln.kvstore.Collective;
import dev.kiln.kvstore.CollectiveProvider;
import dev.kiln.kvstore.DistEnv;

import java.util.Locale;
import java.util.Set;

/**
 * The {@code "gloo"} engine: PyTorch c10d's Gloo process groups ({@link GlooCollective}), registered
 * for {@link java.util.ServiceLoader} in {@code META-INF/services/dev.kiln.kvstore.CollectiveProvider}.
 * Serves {@code dist_sync} and {@code dist_device_sync} with CPU buffers (Gloo moves host memory; a
 * GPU store stages through host buffers). Stateless and thread-safe.
 */
public final class GlooProvider implements CollectiveProvider {
    private static final Set<String> TYPES = Set.of("dist_sync", "dist_device_sync");

    /** Creates the provider (ServiceLoader calls this). */
    public GlooProvider() {
    }

    @Override
    public String name() {
        return "gloo";
    }

    @Override
    public boolean supports(String type) {
        return type != null && TYPES.contains(type.toLowerCase(Locale.ROOT));
    }

    @Override
    public Collective join(DistEnv env) {
        return GlooCollective.join(env);
    }
}
