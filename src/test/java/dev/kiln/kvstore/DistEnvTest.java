package dev.kiln.kvstore;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every environment contract {@link DistEnv} reads, their precedence, and each validation error. */
class DistEnvTest {
    /** {@code "K=V"} pairs to a map. */
    private static Map<String, String> env(String... pairs) {
        Map<String, String> m = new HashMap<>();
        for (String p : pairs) {
            int eq = p.indexOf('=');
            m.put(p.substring(0, eq), p.substring(eq + 1));
        }
        return m;
    }

    private static void assertEnv(DistEnv e, int rank, int world, int local, String addr, int port) {
        assertEquals(new DistEnv(rank, world, local, addr, port, e.timeout()), e);
    }

    private static void assertMessage(Class<? extends RuntimeException> type, Map<String, String> env,
            String... fragments) {
        RuntimeException e = assertThrows(type, () -> DistEnv.fromEnvironment(env));
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + e.getMessage() + "' should contain '" + f + "'");
        }
    }

    @Test
    void torchrunWithAllVariables() {
        DistEnv e = DistEnv.fromEnvironment(env("RANK=3", "WORLD_SIZE=4", "LOCAL_RANK=1", "MASTER_ADDR=host0",
                "MASTER_PORT=1234", "KV_TIMEOUT_S=2.5"));
        assertEnv(e, 3, 4, 1, "host0", 1234);
        assertEquals(Duration.ofMillis(2500), e.timeout());
        assertEquals("torchrun", DistEnv.source(env("RANK=3", "WORLD_SIZE=4")));
    }

    @Test
    void torchrunDefaults() {
        DistEnv e = DistEnv.fromEnvironment(env("RANK=0", "WORLD_SIZE=1"));
        assertEnv(e, 0, 1, 0, "127.0.0.1", DistEnv.DEFAULT_PORT);
        assertEquals(DistEnv.DEFAULT_TIMEOUT, e.timeout());
    }

    @Test
    void valuesAreTrimmed() {
        assertEnv(DistEnv.fromEnvironment(env("RANK= 1 ", "WORLD_SIZE=2\n", "MASTER_ADDR= h ")), 1, 2, 0, "h", 29500);
    }

    @Test
    void openMpi() {
        Map<String, String> m = env("OMPI_COMM_WORLD_RANK=2", "OMPI_COMM_WORLD_SIZE=4", "OMPI_COMM_WORLD_LOCAL_RANK=2",
                "OMPI_COMM_WORLD_LOCAL_SIZE=4");
        assertEnv(DistEnv.fromEnvironment(m), 2, 4, 2, "127.0.0.1", DistEnv.DEFAULT_PORT);
        assertEquals("Open MPI", DistEnv.source(m));
    }

    @Test
    void openMpiOnSeveralHostsNeedsMasterAddr() {
        Map<String, String> m = env("OMPI_COMM_WORLD_RANK=2", "OMPI_COMM_WORLD_SIZE=4", "OMPI_COMM_WORLD_LOCAL_RANK=0",
                "OMPI_COMM_WORLD_LOCAL_SIZE=2");
        assertMessage(IllegalStateException.class, m, "MASTER_ADDR", "OMPI_COMM_WORLD_LOCAL_SIZE='2'", "4 ranks");
        m.put("MASTER_ADDR", "head");
        m.put("MASTER_PORT", "4000");
        assertEnv(DistEnv.fromEnvironment(m), 2, 4, 0, "head", 4000);
    }

    @Test
    void mpichHydra() {
        Map<String, String> m = env("PMI_RANK=1", "PMI_SIZE=3", "MPI_LOCALRANKID=1", "MPI_LOCALNRANKS=3",
                "KV_TIMEOUT_S=7");
        DistEnv e = DistEnv.fromEnvironment(m);
        assertEnv(e, 1, 3, 1, "127.0.0.1", DistEnv.DEFAULT_PORT);
        assertEquals(Duration.ofSeconds(7), e.timeout());
        assertEquals("MPICH/Hydra", DistEnv.source(m));
        assertMessage(IllegalStateException.class, env("PMI_RANK=1", "PMI_SIZE=3"), "MASTER_ADDR", "MPI_LOCALNRANKS");
        assertEnv(DistEnv.fromEnvironment(env("PMI_RANK=0", "PMI_SIZE=1")), 0, 1, 0, "127.0.0.1", 29500);
    }

    @Test
    void slurmDerivesMasterAndPort() {
        Map<String, String> m = env("SLURM_PROCID=5", "SLURM_NTASKS=8", "SLURM_LOCALID=1",
                "SLURM_STEP_NODELIST=node[01-04,07],gpu3", "SLURM_JOB_NODELIST=other[1-9]", "SLURM_JOB_ID=1234567");
        assertEnv(DistEnv.fromEnvironment(m), 5, 8, 1, "node01", DistEnv.SLURM_PORT_BASE + 4567);
        assertEquals("Slurm", DistEnv.source(m));
        m.remove("SLURM_STEP_NODELIST");
        assertEquals("other1", DistEnv.fromEnvironment(m).masterAddr());
    }

    @Test
    void slurmPortIsDeterministicAndUnprivileged() {
        for (String id : new String[] {"0", "9999", "10000", "123456789012345678901234567890"}) {
            int port = DistEnv.fromEnvironment(env("SLURM_PROCID=0", "SLURM_NTASKS=2", "SLURM_JOB_NODELIST=n1",
                    "SLURM_JOB_ID=" + id)).masterPort();
            assertTrue(port >= 15000 && port < 25000, id + " -> " + port);
        }
        assertEquals(15000, DistEnv.fromEnvironment(env("SLURM_PROCID=0", "SLURM_NTASKS=2", "SLURM_JOB_NODELIST=n1",
                "SLURM_JOB_ID=20000")).masterPort());
    }

    @Test
    void slurmErrors() {
        assertMessage(IllegalStateException.class, env("SLURM_PROCID=0", "SLURM_NTASKS=2", "SLURM_JOB_ID=1"),
                "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "MASTER_ADDR");
        assertMessage(IllegalStateException.class, env("SLURM_PROCID=0", "SLURM_NTASKS=2", "SLURM_JOB_NODELIST=n"),
                "MASTER_PORT", "SLURM_JOB_ID");
        assertMessage(IllegalArgumentException.class, env("SLURM_PROCID=0", "SLURM_NTASKS=2", "SLURM_JOB_NODELIST=n",
                "SLURM_JOB_ID=12.5"), "SLURM_JOB_ID='12.5'");
        assertMessage(IllegalStateException.class, env("SLURM_PROCID=0"), "SLURM_NTASKS is not set",
                "SLURM_PROCID='0'");
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
        "node[01-04,07],gpu3;node01",
        "gpu3,node[01-04];gpu3",
        "single;single",
        "n[7];n7",
        "rack[2-3]-node[005-010];rack2-node005",
        "a[1,3-5]b,c[2-3];a1b",
        "  host-1.example.org ;host-1.example.org",
        "n[0001-0002,5];n0001"})
    void firstSlurmHost(String list, String first) {
        assertEquals(first, DistEnv.firstSlurmHost("SLURM_JOB_NODELIST", list));
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
        "node[01-04;unclosed",
        "node01-04];unbalanced",
        "n[[1]];unbalanced",
        "n[];not a number",
        "n[a-b];not a number",
        "n[4-2];backwards",
        "n1,,n2;empty host",
        "n1,;empty host",
        "n1,m[3-1];backwards",
        "'';empty host",
        "n 1;white space"})
    void malformedSlurmHostLists(String list, String why) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DistEnv.firstSlurmHost("SLURM_JOB_NODELIST", list));
        assertTrue(e.getMessage().contains(why) && e.getMessage().contains("SLURM_JOB_NODELIST='" + list + "'"),
                e.getMessage());
    }

    @Test
    void malformedNodeListThroughTheEnvironment() {
        assertMessage(IllegalArgumentException.class, env("SLURM_PROCID=0", "SLURM_NTASKS=2",
                "SLURM_STEP_NODELIST=n[1-", "SLURM_JOB_ID=1"), "SLURM_STEP_NODELIST='n[1-'", "unclosed");
    }

    @Test
    void precedenceTorchrunThenOpenMpiThenMpichThenSlurm() {
        Map<String, String> m = env("RANK=1", "WORLD_SIZE=2", "OMPI_COMM_WORLD_RANK=3", "OMPI_COMM_WORLD_SIZE=4",
                "OMPI_COMM_WORLD_LOCAL_SIZE=4", "PMI_RANK=5", "PMI_SIZE=6", "MPI_LOCALNRANKS=6", "SLURM_PROCID=7",
                "SLURM_NTASKS=8", "SLURM_JOB_NODELIST=s1", "SLURM_JOB_ID=1");
        assertEquals(1, DistEnv.fromEnvironment(m).rank());
        m.remove("RANK");
        m.remove("WORLD_SIZE");
        assertEquals(3, DistEnv.fromEnvironment(m).rank());
        m.remove("OMPI_COMM_WORLD_RANK");
        assertEquals(5, DistEnv.fromEnvironment(m).rank());
        m.remove("PMI_RANK");
        assertEquals(7, DistEnv.fromEnvironment(m).rank());
    }

    @Test
    void masterAddrAndPortOverrideEveryAdapter() {
        String[] over = {"MASTER_ADDR=10.0.0.9", "MASTER_PORT=4242"};
        for (Map<String, String> m : new Map[] {
            env("OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=2"),
            env("PMI_RANK=0", "PMI_SIZE=2"),
            env("SLURM_PROCID=0", "SLURM_NTASKS=2", "SLURM_JOB_NODELIST=s[1-2]", "SLURM_JOB_ID=99"),
            env("RANK=0", "WORLD_SIZE=2")}) {
            m.putAll(env(over));
            DistEnv e = DistEnv.fromEnvironment(m);
            assertEquals("10.0.0.9", e.masterAddr(), m.toString());
            assertEquals(4242, e.masterPort(), m.toString());
        }
    }

    @Test
    void nothingSetListsTheContracts() {
        assertMessage(IllegalStateException.class, env("LOCAL_RANK=0", "MASTER_ADDR=x"), "torchrun", "RANK",
                "WORLD_SIZE", "Open MPI", "OMPI_COMM_WORLD_RANK", "MPICH", "PMI_RANK", "Slurm", "SLURM_PROCID");
    }

    @Test
    void torchrunNeedsBothRankAndWorldSize() {
        assertMessage(IllegalStateException.class, env("RANK=0"), "WORLD_SIZE is not set", "RANK='0'");
        assertMessage(IllegalStateException.class, env("WORLD_SIZE=2"), "RANK is not set");
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
        "RANK=x;RANK='x' is not an integer",
        "WORLD_SIZE=2.0;WORLD_SIZE='2.0' is not an integer",
        "RANK=2;RANK='2' is outside [0, WORLD_SIZE=2)",
        "RANK=-1;RANK='-1' is outside [0, WORLD_SIZE=2)",
        "WORLD_SIZE=0;WORLD_SIZE='0' must be at least 1",
        "LOCAL_RANK=2;LOCAL_RANK='2' is outside [0, 2)",
        "LOCAL_RANK=;LOCAL_RANK='' is not an integer",
        "MASTER_PORT=0;MASTER_PORT='0' is outside 1..65535",
        "MASTER_PORT=65536;MASTER_PORT='65536' is outside 1..65535",
        "MASTER_PORT=http;MASTER_PORT='http' is not an integer",
        "MASTER_ADDR=a b;MASTER_ADDR='a b' is not a host name",
        "KV_TIMEOUT_S=0;KV_TIMEOUT_S='0' must be a positive number",
        "KV_TIMEOUT_S=-3;KV_TIMEOUT_S='-3' must be a positive number",
        "KV_TIMEOUT_S=NaN;KV_TIMEOUT_S='NaN' must be a positive number",
        "KV_TIMEOUT_S=Infinity;KV_TIMEOUT_S='Infinity' must be a positive number",
        "KV_TIMEOUT_S=1e-12;KV_TIMEOUT_S='1e-12' must be a positive number",
        "KV_TIMEOUT_S=ten;KV_TIMEOUT_S='ten' is not a number"})
    void invalidValuesNameTheVariable(String override, String message) {
        Map<String, String> m = env("RANK=1", "WORLD_SIZE=2");
        m.putAll(env(override));
        assertMessage(IllegalArgumentException.class, m, message);
    }

    @Test
    void blankMasterAddr() {
        assertMessage(IllegalArgumentException.class, env("RANK=0", "WORLD_SIZE=1", "MASTER_ADDR= "),
                "MASTER_ADDR=' ' is not a host name");
    }

    @Test
    void adapterValuesAreValidatedToo() {
        assertMessage(IllegalArgumentException.class, env("OMPI_COMM_WORLD_RANK=4", "OMPI_COMM_WORLD_SIZE=4"),
                "OMPI_COMM_WORLD_RANK='4' is outside [0, OMPI_COMM_WORLD_SIZE=4)");
        assertMessage(IllegalArgumentException.class, env("PMI_RANK=0", "PMI_SIZE=zero"), "PMI_SIZE='zero'");
        assertMessage(IllegalArgumentException.class, env("SLURM_PROCID=0", "SLURM_NTASKS=2", "SLURM_LOCALID=9",
                "SLURM_JOB_NODELIST=n", "SLURM_JOB_ID=1"), "SLURM_LOCALID='9' is outside [0, 2)");
    }

    @Test
    void fractionalTimeout() {
        assertEquals(Duration.ofMillis(250), DistEnv.fromEnvironment(env("RANK=0", "WORLD_SIZE=1", "KV_TIMEOUT_S=0.25"))
                .timeout());
    }

    @Test
    void constructorChecksComponents() {
        Duration t = Duration.ofSeconds(1);
        assertThrows(IllegalArgumentException.class, () -> new DistEnv(2, 2, 0, "h", 1, t));
        assertThrows(IllegalArgumentException.class, () -> new DistEnv(0, 0, 0, "h", 1, t));
        assertThrows(IllegalArgumentException.class, () -> new DistEnv(0, 1, 1, "h", 1, t));
        assertThrows(IllegalArgumentException.class, () -> new DistEnv(0, 1, 0, " ", 1, t));
        assertThrows(IllegalArgumentException.class, () -> new DistEnv(0, 1, 0, "h", 70000, t));
        assertThrows(IllegalArgumentException.class, () -> new DistEnv(0, 1, 0, "h", 1, Duration.ZERO));
        assertThrows(NullPointerException.class, () -> new DistEnv(0, 1, 0, "h", 1, null));
    }
}
