package fjord.oracle;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.PrintSink;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.table.api.Schema;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.types.Row;

/**
 * Runs one query of the Flink Nexmark benchmark (its SQL text, bench/nexmark/flink/qN.sql) over
 * Nexmark event files written by {@code fjord-nexmark generate}: the benchmark's {@code datagen}
 * table and views, with the filesystem connector and the json format instead of the generator
 * connector. The query's INSERT runs as written up to its sink: its SELECT becomes a DataStream
 * ({@code toChangelogStream}: the rows of an insert-only query are all {@code +I}, an updating
 * query's (q4, q9, q15-q19) also {@code -U}/{@code +U}/{@code -D}) that goes to a discarding
 * sink with SINK {@code blackhole}
 * (what the benchmark's {@code blackhole} connector does), or to a print sink with SINK {@code
 * print} (rows on stdout in Flink's {@code +I[...]} format, a {@code n> } prefix at parallelism
 * above 1). Prints one line {@code NEXMARK-RESULT {"engine":"flink",...}} on stderr with {@code
 * seconds} (from submitting the job until it finished) and {@code seconds_to_last_row} (until
 * the last result row reached the sink; with checkpoints Flink 2 keeps a finished job running
 * until one more checkpoint, up to an interval later, which this leaves out).
 *
 * <p>Usage: {@code NexmarkSql INPUT_DIR blackhole|print PARALLELISM CHECKPOINT_INTERVAL_MS
 * CHECKPOINT_DIR QUERY_FILE...}: several queries run as one job, each printing with its file's
 * stem as the print identifier ({@code q3:2> +I[...]}), so a test pays for one JVM and one job.
 * {@code ${FLINK_HOME}} in a text (q13's side input file) is replaced by the environment
 * variable {@code FJORD_NEXMARK_FLINK_HOME}, as the benchmark's runner replaces it.
 */
public final class NexmarkSql {
  private NexmarkSql() {}

  /** When the last row reached the sink (System.nanoTime; the MiniCluster runs in this JVM). */
  static final AtomicLong LAST_ROW = new AtomicLong();

  /** Rows that reached the sink. */
  static final AtomicLong ROWS = new AtomicLong();

  private static final Pattern INSERT =
      Pattern.compile("(?is)^\\s*INSERT\\s+INTO\\s+([`\\w]+)\\s+(.*)$");

  /** Stamps the time of each row passing by. */
  static final class Stamp implements MapFunction<Row, Row> {
    @Override
    public Row map(Row row) {
      ROWS.incrementAndGet();
      LAST_ROW.set(System.nanoTime());
      return row;
    }
  }

  private static final String SOURCE =
      "CREATE TABLE nexmark (\n"
          + "  event_type INT,\n"
          + "  person ROW<id BIGINT, name VARCHAR, emailAddress VARCHAR, creditCard VARCHAR,"
          + " city VARCHAR, state VARCHAR, `dateTime` TIMESTAMP(3), extra VARCHAR>,\n"
          + "  auction ROW<id BIGINT, itemName VARCHAR, description VARCHAR, initialBid BIGINT,"
          + " reserve BIGINT, `dateTime` TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT,"
          + " category BIGINT, extra VARCHAR>,\n"
          + "  bid ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,"
          + " `dateTime` TIMESTAMP(3), extra VARCHAR>,\n"
          + "  `dateTime` AS CASE WHEN event_type = 0 THEN person.`dateTime`"
          + " WHEN event_type = 1 THEN auction.`dateTime` ELSE bid.`dateTime` END,\n"
          + "  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND\n"
          + ") WITH ('connector' = 'filesystem', 'path' = '%s', 'format' = 'json')";

  private static final List<String> VIEWS =
      List.of(
          "CREATE VIEW person AS SELECT person.id, person.name, person.emailAddress,"
              + " person.creditCard, person.city, person.state, `dateTime`, person.extra"
              + " FROM nexmark WHERE event_type = 0",
          "CREATE VIEW auction AS SELECT auction.id, auction.itemName, auction.description,"
              + " auction.initialBid, auction.reserve, `dateTime`, auction.expires,"
              + " auction.seller, auction.category, auction.extra"
              + " FROM nexmark WHERE event_type = 1",
          "CREATE VIEW bid AS SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url,"
              + " `dateTime`, bid.extra FROM nexmark WHERE event_type = 2");

  public static void main(String[] args) throws Exception {
    if (args.length < 6) {
      System.err.println(
          "usage: NexmarkSql INPUT_DIR blackhole|print PARALLELISM CHECKPOINT_INTERVAL_MS"
              + " CHECKPOINT_DIR QUERY_FILE...");
      System.exit(2);
    }
    String input = args[0];
    String sink = args[1];
    int parallelism = Integer.parseInt(args[2]);
    long interval = Long.parseLong(args[3]);
    String checkpoints = args[4];
    if (!sink.equals("blackhole") && !sink.equals("print")) {
      System.err.println("SINK must be blackhole or print, not " + sink);
      System.exit(2);
    }
    Configuration conf = new Configuration();
    conf.setString("parallelism.default", Integer.toString(parallelism));
    if (interval > 0) {
      conf.setString("execution.checkpointing.interval", interval + " ms");
      conf.setString("execution.checkpointing.mode", "EXACTLY_ONCE");
      conf.setString("execution.checkpointing.dir", checkpoints);
      conf.setString("execution.checkpointing.storage", "filesystem");
    }
    StreamExecutionEnvironment streams = StreamExecutionEnvironment.getExecutionEnvironment(conf);
    StreamTableEnvironment env = StreamTableEnvironment.create(streams);
    env.executeSql(String.format(SOURCE, input.replace("'", "''")));
    for (String view : VIEWS) {
      env.executeSql(view);
    }
    StringBuilder names = new StringBuilder();
    for (int q = 5; q < args.length; q++) {
      String name = Path.of(args[q]).getFileName().toString().replaceAll("\\.sql$", "");
      names.append(q > 5 ? "," : "").append(name);
      String script = Files.readString(Path.of(args[q]), StandardCharsets.UTF_8);
      // The benchmark's runner replaces ${FLINK_HOME} in the texts (q13 reads its side input
      // from ${FLINK_HOME}/data/side_input.txt); here it is FJORD_NEXMARK_FLINK_HOME.
      String flinkHome = System.getenv("FJORD_NEXMARK_FLINK_HOME");
      if (flinkHome != null) {
        script = script.replace("${FLINK_HOME}", flinkHome);
      }
      DataStream<Row> rows = null;
      for (String statement : SqlScript.split(script)) {
        Matcher insert = INSERT.matcher(statement);
        if (insert.matches()) {
          rows =
              env.toChangelogStream(
                  env.sqlQuery(insert.group(2)), Schema.derived(), ChangelogMode.all());
        } else {
          env.executeSql(statement);
        }
      }
      if (rows == null) {
        System.err.println(args[q] + " has no INSERT statement");
        System.exit(2);
      }
      DataStream<Row> stamped = rows.map(new Stamp()).returns(rows.getType());
      if (sink.equals("print")) {
        stamped.sinkTo(new PrintSink<>(name));
      } else {
        stamped.sinkTo(new DiscardingSink<>());
      }
    }
    long started = System.nanoTime();
    streams.execute("nexmark " + names);
    long ended = System.nanoTime();
    long last = Math.max(LAST_ROW.get(), started);
    System.out.flush();
    System.err.printf(
        "NEXMARK-RESULT {\"engine\":\"flink\",\"queries\":\"%s\",\"parallelism\":%d,"
            + "\"seconds\":%.3f,\"seconds_to_last_row\":%.3f,\"rows\":%d}%n",
        names,
        parallelism, (ended - started) / 1e9, (last - started) / 1e9, ROWS.get());
  }
}
