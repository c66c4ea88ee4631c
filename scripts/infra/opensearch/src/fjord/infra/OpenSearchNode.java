package fjord.infra;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collections;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;

/**
 * Runs one OpenSearch node for Fjord's tests: {@code OpenSearchNode HOME CONFIG_DIR}.
 *
 * <p>HOME holds {@code modules/transport-netty4} (the HTTP module, loaded from its plugin
 * descriptor as a distribution loads it); CONFIG_DIR holds {@code opensearch.yml} and {@code
 * log4j2.properties}. This is what {@code org.opensearch.bootstrap.OpenSearch} does, less its
 * bootstrap: that refuses to run as root (CI runs as root) and cannot run without JNA's native
 * calls on 2.19, and installs the Java security manager, which a test node on loopback does not
 * need. Prints {@code FJORD-OPENSEARCH-STARTED} once the node serves HTTP; SIGTERM closes it
 * cleanly (flushes its shards).
 */
public final class OpenSearchNode {
  private OpenSearchNode() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: OpenSearchNode HOME CONFIG_DIR");
      System.exit(2);
    }
    Path home = Paths.get(args[0]).toAbsolutePath();
    Path conf = Paths.get(args[1]).toAbsolutePath();
    LogConfigurator.registerErrorListener();
    Environment env =
        InternalSettingsPreparer.prepareEnvironment(
            Settings.builder().put("path.home", home.toString()).build(),
            Collections.emptyMap(),
            conf,
            () -> "fjord-node");
    LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(env.settings()));
    LogConfigurator.configure(env);
    Node node = new Node(env);
    CountDownLatch closed = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    node.close();
                    node.awaitClose(20, TimeUnit.SECONDS);
                  } catch (Exception e) {
                    e.printStackTrace();
                  }
                  closed.countDown();
                },
                "fjord-opensearch-shutdown"));
    node.start();
    System.out.println("FJORD-OPENSEARCH-STARTED");
    System.out.flush();
    closed.await();
  }
}
