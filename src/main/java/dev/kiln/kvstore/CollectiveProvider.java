package dev.kiln.kvstore;

/**
 * Creates {@link Collective}s for the distributed stores; found with {@link java.util.ServiceLoader}
 * (a {@code META-INF/services/dev.kiln.kvstore.CollectiveProvider} entry), so an engine lives in an
 * optional jar and the core needs none. Implementations must be thread-safe.
 */
public interface CollectiveProvider {
    /** The engine's name, e.g. {@code "gloo"}; {@code KILN_KVSTORE_BACKEND} picks one by this name. */
    String name();

    /** Whether this engine can serve store {@code type} (e.g. {@code "dist_sync"}) on this machine. */
    boolean supports(String type);

    /**
     * Joins the process group described by {@code env} (rendezvous at its master address); blocks
     * until every rank has joined or the deadline passes ({@link CollectiveException}).
     */
    Collective join(DistEnv env);
}
