package fjord.infra;

import java.io.File;
import java.util.concurrent.CountDownLatch;
import org.apache.activemq.broker.BrokerPlugin;
import org.apache.activemq.broker.BrokerService;
import org.apache.activemq.plugin.StatisticsBrokerPlugin;
import org.apache.activemq.store.kahadb.KahaDBPersistenceAdapter;

/**
 * A single Apache ActiveMQ Classic broker for Fjord's tests (started by scripts/infra/activemq.sh):
 * a STOMP transport connector (what the connector speaks) and an OpenWire one (what the test
 * tools speak, so fixtures do not go through the code under test), both on 127.0.0.1 only, with
 * persistent KahaDB storage in DATA_DIR (journal writes synced to disk, so a SIGKILLed broker
 * keeps every message it acknowledged) and the statistics plugin (queue depths for the tests).
 *
 * <p>Usage: {@code ActiveMqBroker DATA_DIR STOMP_PORT OPENWIRE_PORT}. Prints
 * {@code FJORD-ACTIVEMQ-STARTED} once both connectors accept connections; SIGTERM stops the
 * broker cleanly (its shutdown hook).
 */
public final class ActiveMqBroker {
  private ActiveMqBroker() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      System.err.println("usage: ActiveMqBroker DATA_DIR STOMP_PORT OPENWIRE_PORT");
      System.exit(2);
    }
    File data = new File(args[0]);
    BrokerService broker = new BrokerService();
    broker.setBrokerName("fjord-test");
    broker.setDataDirectoryFile(data);
    broker.setPersistent(true);
    broker.setUseJmx(false);
    broker.setSchedulerSupport(false);
    broker.setUseShutdownHook(true);
    KahaDBPersistenceAdapter kahaDb = new KahaDBPersistenceAdapter();
    kahaDb.setDirectory(new File(data, "kahadb"));
    kahaDb.setEnableJournalDiskSyncs(true);
    broker.setPersistenceAdapter(kahaDb);
    broker.getSystemUsage().getStoreUsage().setLimit(1L << 30);
    broker.getSystemUsage().getTempUsage().setLimit(256L << 20);
    broker.setPlugins(new BrokerPlugin[] {new StatisticsBrokerPlugin()});
    // Frames above 4 MiB are refused with an ERROR frame (the tests send one).
    broker.addConnector("stomp://127.0.0.1:" + args[1] + "?wireFormat.maxFrameSize=4194304");
    broker.addConnector("tcp://127.0.0.1:" + args[2]);
    broker.start();
    if (!broker.waitUntilStarted()) {
      System.err.println("the broker did not start");
      System.exit(1);
    }
    System.out.println("FJORD-ACTIVEMQ-STARTED stomp://127.0.0.1:" + args[1]);
    System.out.flush();
    new CountDownLatch(1).await();
  }
}
