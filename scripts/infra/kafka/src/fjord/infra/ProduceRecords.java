package fjord.infra;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Produces the records given on standard input with Kafka's own producer (idempotent,
 * {@code acks=all}), one per line: {@code partition TAB timestamp TAB key-hex TAB value-hex}, each
 * field {@code -} for "none" (the default partitioner; the producer's clock; a null key; a null
 * value). Unlike Kafka's console producer it sets timestamps and partitions, carries any bytes,
 * and exits non-zero if any record was not acknowledged. Test tooling for scripts/infra/kafka.sh.
 *
 * <p>Usage: {@code ProduceRecords --bootstrap-server HOST:PORT --topic T [--timeout-ms N]}
 */
public final class ProduceRecords {
  private ProduceRecords() {}

  public static void main(String[] args) throws Exception {
    String bootstrap = null;
    String topic = null;
    long timeoutMs = 60_000;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) {
        usage("missing value after " + a);
      }
      switch (a) {
        case "--bootstrap-server" -> bootstrap = args[++i];
        case "--topic" -> topic = args[++i];
        case "--timeout-ms" -> timeoutMs = Long.parseLong(args[++i]);
        default -> usage("unknown argument " + a);
      }
    }
    if (bootstrap == null || topic == null) {
      usage("--bootstrap-server and --topic are required");
    }
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
    props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, Long.toString(timeoutMs));
    props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Long.toString(Math.max(timeoutMs, 30_000)));
    props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    HexFormat hex = HexFormat.of();
    AtomicLong acked = new AtomicLong();
    AtomicReference<Exception> failure = new AtomicReference<>();
    long sent = 0;
    long lineNo = 0;
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props);
        BufferedReader in =
            new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null && failure.get() == null) {
        lineNo++;
        String[] f = line.split("\t", -1);
        if (f.length != 4) {
          System.err.println("ProduceRecords: line " + lineNo + " has " + f.length
              + " fields, want 4 (partition, timestamp, key-hex, value-hex): " + line);
          System.exit(2);
        }
        Integer partition = f[0].equals("-") ? null : Integer.valueOf(f[0]);
        Long timestamp = f[1].equals("-") ? null : Long.valueOf(f[1]);
        byte[] key = f[2].equals("-") ? null : hex.parseHex(f[2]);
        byte[] value = f[3].equals("-") ? null : hex.parseHex(f[3]);
        producer.send(new ProducerRecord<>(topic, partition, timestamp, key, value), (meta, e) -> {
          if (e != null) {
            failure.compareAndSet(null, e);
          } else {
            acked.incrementAndGet();
          }
        });
        sent++;
      }
      producer.flush();
    }
    if (failure.get() != null || acked.get() != sent) {
      System.err.println("ProduceRecords: " + acked.get() + " of " + sent + " records acknowledged by "
          + bootstrap + " for topic " + topic + (failure.get() == null ? "" : ": " + failure.get()));
      System.exit(1);
    }
    System.err.println("ProduceRecords: " + sent + " records to " + topic);
  }

  private static void usage(String why) {
    System.err.println("ProduceRecords: " + why
        + "\nusage: ProduceRecords --bootstrap-server HOST:PORT --topic T [--timeout-ms N]");
    System.exit(2);
  }
}
