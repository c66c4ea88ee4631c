package fjord.infra;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads every record of a topic from the beginning up to its end as of the moment it starts, with
 * Kafka's own consumer, and prints one line per record:
 * {@code partition TAB offset TAB timestamp TAB key-hex TAB value-hex} ({@code -} for a null key or
 * value). Test tooling for scripts/infra/kafka.sh; the oracle of the exactly-once tests.
 *
 * <p>With {@code --isolation read_committed} (the default) the end of each partition is its last
 * stable offset, so the output is exactly the records of committed transactions (and
 * non-transactional records) before the first still-open transaction; records of aborted
 * transactions are never printed. There is no idle time-out: the tool stops when every partition's
 * position has reached the end it read at the start, and fails (exit 1) if that takes longer than
 * {@code --timeout-ms}.
 *
 * <p>Usage: {@code DrainTopic --bootstrap-server HOST:PORT --topic T [--isolation
 * read_committed|read_uncommitted] [--timeout-ms N]}
 */
public final class DrainTopic {
  private DrainTopic() {}

  public static void main(String[] args) throws Exception {
    String bootstrap = null;
    String topic = null;
    String isolation = "read_committed";
    long timeoutMs = 60_000;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) {
        usage("missing value after " + a);
      }
      switch (a) {
        case "--bootstrap-server" -> bootstrap = args[++i];
        case "--topic" -> topic = args[++i];
        case "--isolation" -> isolation = args[++i];
        case "--timeout-ms" -> timeoutMs = Long.parseLong(args[++i]);
        default -> usage("unknown argument " + a);
      }
    }
    if (bootstrap == null || topic == null) {
      usage("--bootstrap-server and --topic are required");
    }
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    final Duration wait = Duration.ofMillis(timeoutMs);
    long deadline = System.currentTimeMillis() + timeoutMs;
    HexFormat hex = HexFormat.of();
    StringBuilder out = new StringBuilder();
    long count = 0;
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
      List<PartitionInfo> infos = consumer.partitionsFor(topic, wait);
      if (infos == null || infos.isEmpty()) {
        System.err.println("DrainTopic: topic " + topic + " does not exist on " + bootstrap);
        System.exit(1);
      }
      List<TopicPartition> parts = new ArrayList<>();
      for (PartitionInfo p : infos) {
        parts.add(new TopicPartition(topic, p.partition()));
      }
      consumer.assign(parts);
      consumer.seekToBeginning(parts);
      Map<TopicPartition, Long> end = new HashMap<>(consumer.endOffsets(parts, wait));
      while (true) {
        end.entrySet().removeIf(e -> consumer.position(e.getKey(), wait) >= e.getValue());
        if (end.isEmpty()) {
          break;
        }
        long left = deadline - System.currentTimeMillis();
        if (left <= 0) {
          System.out.print(out);
          System.out.flush();
          System.err.println("DrainTopic: timed out after " + timeoutMs + " ms with partitions not read to their end: " + end);
          System.exit(1);
        }
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(Math.min(left, 500)))) {
          Long stop = end.get(new TopicPartition(r.topic(), r.partition()));
          // Past the end read at the start: written later, not part of this snapshot.
          if (stop == null || r.offset() >= stop) {
            continue;
          }
          out.append(r.partition()).append('\t').append(r.offset()).append('\t').append(r.timestamp())
              .append('\t').append(r.key() == null ? "-" : hex.formatHex(r.key()))
              .append('\t').append(r.value() == null ? "-" : hex.formatHex(r.value())).append('\n');
          count++;
          if (out.length() > 1 << 20) {
            System.out.print(out);
            out.setLength(0);
          }
        }
      }
    }
    System.out.print(out);
    System.out.flush();
    System.err.println("DrainTopic: " + count + " records from " + topic);
  }

  private static void usage(String why) {
    System.err.println("DrainTopic: " + why + "\nusage: DrainTopic --bootstrap-server HOST:PORT --topic T"
        + " [--isolation read_committed|read_uncommitted] [--timeout-ms N]");
    System.exit(2);
  }
}
