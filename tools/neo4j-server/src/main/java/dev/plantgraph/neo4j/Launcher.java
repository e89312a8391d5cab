package dev.plantgraph.neo4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;

/**
 * Starts a Neo4j 5.26 community DBMS in this JVM with only the Bolt connector, on 127.0.0.1,
 * authentication on, and stops it cleanly on SIGTERM / SIGINT.
 *
 * <p>Everything comes from the environment so that no secret lives in the repository:
 * <ul>
 *   <li>{@code PLANTGRAPH_NEO4J_HOME} (or the first argument): folder holding data/ and logs/</li>
 *   <li>{@code PLANTGRAPH_NEO4J_PORT}: Bolt port, default 7687</li>
 *   <li>{@code NEO4J_PASSWORD}: the password of user {@code neo4j}, set at every start (required)</li>
 *   <li>{@code PLANTGRAPH_NEO4J_PAGECACHE}: page cache size, default 128m (heap is -Xmx of this JVM)</li>
 * </ul>
 */
public final class Launcher {
    private Launcher() {}

    public static void main(String[] args) throws Exception {
        String homeArg = args.length > 0 ? args[0] : System.getenv("PLANTGRAPH_NEO4J_HOME");
        if (homeArg == null || homeArg.isBlank()) {
            fail("no home folder: pass it as the first argument or set PLANTGRAPH_NEO4J_HOME");
        }
        String password = System.getenv("NEO4J_PASSWORD");
        if (password == null || password.length() < 8) {
            fail("NEO4J_PASSWORD must be set to at least 8 characters (Neo4j's minimum)");
        }
        int port = parsePort(env("PLANTGRAPH_NEO4J_PORT", "7687"));
        String pageCache = env("PLANTGRAPH_NEO4J_PAGECACHE", "128m");
        String listen = env("PLANTGRAPH_NEO4J_HOST", "127.0.0.1");

        Path home = Path.of(homeArg).toAbsolutePath();
        try {
            Files.createDirectories(home);
        } catch (IOException e) {
            fail("cannot create " + home + ": " + e.getMessage());
        }

        // Written as a neo4j.conf-style file (no secrets in it) so that it can be inspected.
        Map<String, String> config = new LinkedHashMap<>();
        config.put("server.bolt.enabled", "true");
        config.put("server.bolt.listen_address", listen + ":" + port);
        config.put("server.bolt.advertised_address", listen + ":" + port);
        config.put("server.bolt.tls_level", "DISABLED");
        config.put("dbms.security.auth_enabled", "true");
        config.put("server.memory.pagecache.size", pageCache);
        config.put("db.tx_log.rotation.retention_policy", "100M size");
        config.put("db.transaction.timeout", env("PLANTGRAPH_NEO4J_TX_TIMEOUT", "0s"));

        Path confFile = home.resolve("plantgraph-neo4j.conf");
        StringBuilder conf = new StringBuilder("# written by the plantgraph launcher at every start\n");
        config.forEach((k, v) -> conf.append(k).append('=').append(v).append('\n'));
        try {
            Files.writeString(confFile, conf.toString());
        } catch (IOException e) {
            fail("cannot write " + confFile + ": " + e.getMessage());
        }

        final DatabaseManagementService dbms;
        try {
            dbms = new DatabaseManagementServiceBuilder(home).loadPropertiesFromFile(confFile).build();
        } catch (RuntimeException e) {
            fail("Neo4j did not start in " + home + ": " + rootMessage(e));
            return;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("plantgraph-neo4j: shutting down");
            dbms.shutdown();
            System.out.println("plantgraph-neo4j: stopped");
            System.out.flush();
            stopped.countDown();
        }, "plantgraph-neo4j-shutdown"));

        try {
            setPassword(dbms.database("system"), password);
        } catch (RuntimeException e) {
            System.err.println("plantgraph-neo4j: cannot set the password of user neo4j: " + rootMessage(e));
            System.exit(3);
        }
        System.out.println("plantgraph-neo4j: ready bolt://" + listen + ":" + port + " home=" + home);
        System.out.flush();
        stopped.await();
    }

    /** Makes the password of user neo4j the configured one, without a forced change at login. */
    private static void setPassword(GraphDatabaseService system, String password) {
        try {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PLAINTEXT PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
        } catch (RuntimeException e) {
            // Re-setting the same password is refused by Neo4j; that is the state we want anyway.
            String msg = rootMessage(e).toLowerCase();
            if (!msg.contains("same")) {
                throw e;
            }
            system.executeTransactionally("ALTER USER neo4j SET PASSWORD CHANGE NOT REQUIRED");
        }
    }

    private static String env(String name, String dflt) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? dflt : v;
    }

    private static int parsePort(String raw) {
        try {
            int p = Integer.parseInt(raw.trim());
            if (p < 1 || p > 65535) {
                throw new NumberFormatException();
            }
            return p;
        } catch (NumberFormatException e) {
            fail("PLANTGRAPH_NEO4J_PORT must be a port number 1..65535, got '" + raw + "'");
            return -1;
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable cur = e;
        StringBuilder sb = new StringBuilder(String.valueOf(e.getMessage()));
        while (cur.getCause() != null && cur.getCause() != cur) {
            cur = cur.getCause();
            sb.append(" <- ").append(cur.getMessage());
        }
        return sb.toString();
    }

    private static void fail(String why) {
        System.err.println("plantgraph-neo4j: " + why);
        System.exit(2);
    }
}
