package fjord.oracle;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.KeyedStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.streaming.api.functions.co.ProcessJoinFunction;
import org.apache.flink.streaming.api.windowing.assigners.EventTimeSessionWindows;
import org.apache.flink.streaming.api.windowing.assigners.SlidingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.util.CloseableIterator;
import org.apache.flink.util.OutputTag;

/**
 * The oracle of Fjord's DataStream tests: runs named cases on Apache Flink's local MiniCluster
 * (parallelism 1) over one input file and prints every output record.
 *
 * All cases run in one job. <p>Usage: {@code DataStreamCases <input file> <case>...}. Input lines are {@code key,value,ts}
 * records (key: string, value and ts: longs) or {@code #wm,ts} lines, which emit the watermark
 * {@code ts} right after the records before them. Output: for each case a line {@code == case},
 * then one line per output record {@code key,value,ts} ({@code late:key,value,ts} for the late
 * side output), in Flink's emission order.
 */
public final class DataStreamCases {
  private static final String WATERMARK = "#wm";
  private static final TypeInformation<Tuple3<String, Long, Long>> RECORD =
      Types.TUPLE(Types.STRING, Types.LONG, Types.LONG);
  private static final OutputTag<Tuple3<String, Long, Long>> LATE = new OutputTag<>("late", RECORD);

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: DataStreamCases <input file> <case>...");
      System.exit(2);
    }
    List<Tuple3<String, Long, Long>> input = new ArrayList<>();
    for (String line : Files.readAllLines(Path.of(args[0]))) {
      if (line.isBlank()) {
        continue;
      }
      String[] f = line.split(",");
      if (f[0].equals(WATERMARK)) {
        input.add(Tuple3.of(WATERMARK, 0L, Long.parseLong(f[1])));
      } else {
        input.add(Tuple3.of(f[0], Long.parseLong(f[1]), Long.parseLong(f[2])));
      }
    }
    List<String> names = List.of(args).subList(1, args.length);
    Map<String, List<String>> outputs = run(names, input);
    for (String name : names) {
      System.out.println("== " + name);
      for (String out : outputs.get(name)) {
        System.out.println(out);
      }
    }
    System.out.flush();
  }

  /** Emits the watermark lines of the input as watermarks, nothing periodically. */
  static final class InputWatermarks implements WatermarkGenerator<Tuple3<String, Long, Long>> {
    @Override
    public void onEvent(Tuple3<String, Long, Long> e, long ts, WatermarkOutput out) {
      if (e.f0.equals(WATERMARK)) {
        out.emitWatermark(new Watermark(e.f2));
      }
    }

    @Override
    public void onPeriodicEmit(WatermarkOutput out) {}
  }

  /**
   * Runs every case in one Flink job (one MiniCluster start) over one source; each case's
   * output lines are tagged with its name on the way to the collect sink and split apart here.
   */
  static Map<String, List<String>> run(List<String> names, List<Tuple3<String, Long, Long>> input)
      throws Exception {
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
    env.setParallelism(1);
    DataStream<Tuple3<String, Long, Long>> records =
        env.fromData(input, RECORD)
            .assignTimestampsAndWatermarks(
                WatermarkStrategy.<Tuple3<String, Long, Long>>forGenerator(ctx -> new InputWatermarks())
                    .withTimestampAssigner((e, previous) -> e.f2))
            .filter(e -> !e.f0.equals(WATERMARK));
    DataStream<String> all = null;
    for (String name : names) {
      DataStream<String> lines = caseOutput(name, records).map(line -> name + "|" + line).returns(Types.STRING);
      all = all == null ? lines : all.union(lines);
    }
    Map<String, List<String>> outputs = new LinkedHashMap<>();
    names.forEach(name -> outputs.put(name, new ArrayList<>()));
    try (CloseableIterator<String> it = all.executeAndCollect("fjord oracle")) {
      while (it.hasNext()) {
        String tagged = it.next();
        int bar = tagged.indexOf('|');
        outputs.get(tagged.substring(0, bar)).add(tagged.substring(bar + 1));
      }
    }
    return outputs;
  }

  /** The output lines of one case. */
  static DataStream<String> caseOutput(String name, DataStream<Tuple3<String, Long, Long>> records) {
    KeyedStream<Tuple3<String, Long, Long>, String> keyed = records.keyBy(e -> e.f0);
    Duration ten = Duration.ofMillis(10);
    DataStream<Tuple3<String, Long, Long>> out;
    DataStream<Tuple3<String, Long, Long>> late = null;
    switch (name) {
      case "tumbling-sum" -> out = keyed.window(TumblingEventTimeWindows.of(ten)).sum(1);
      case "tumbling-min" -> out = keyed.window(TumblingEventTimeWindows.of(ten)).min(1);
      case "tumbling-max" -> out = keyed.window(TumblingEventTimeWindows.of(ten)).max(1);
      case "tumbling-min-by" -> out = keyed.window(TumblingEventTimeWindows.of(ten)).minBy(1);
      case "tumbling-max-by" -> out = keyed.window(TumblingEventTimeWindows.of(ten)).maxBy(1);
      case "sliding-max-by" ->
          out = keyed.window(SlidingEventTimeWindows.of(ten, Duration.ofMillis(5))).maxBy(1);
      case "session-sum" -> out = keyed.window(EventTimeSessionWindows.withGap(Duration.ofMillis(5))).sum(1);
      case "count-sum" -> out = keyed.countWindow(3).sum(1);
      case "sliding-count-min-by" -> out = keyed.countWindow(3, 2).minBy(1);
      case "rolling-sum" -> out = keyed.sum(1);
      case "rolling-max" -> out = keyed.max(1);
      case "rolling-min-by" -> out = keyed.minBy(1);
      case "tumbling-lateness-sum" -> {
        SingleOutputStreamOperator<Tuple3<String, Long, Long>> main =
            keyed
                .window(TumblingEventTimeWindows.of(ten))
                .allowedLateness(Duration.ofMillis(5))
                .sideOutputLateData(LATE)
                .sum(1);
        out = main;
        late = main.getSideOutput(LATE);
      }
      case "process-watermark" ->
          out =
              records
                  .process(
                      new ProcessFunction<Tuple3<String, Long, Long>, Tuple3<String, Long, Long>>() {
                        @Override
                        public void processElement(
                            Tuple3<String, Long, Long> e,
                            Context ctx,
                            org.apache.flink.util.Collector<Tuple3<String, Long, Long>> collector) {
                          collector.collect(Tuple3.of(e.f0, e.f1, ctx.timerService().currentWatermark()));
                        }
                      })
                  .returns(RECORD);
      // Records with an even value join those with an odd value of the same key 3 ms before to
      // 5 ms after them; a pair is (key, left * 100 + right, the pair's timestamp). Only records
      // more than 8 ms ahead of the watermark take part: which element of a two-input operator
      // comes first is up to the runtime, and so are the lateness and cleanup of the others.
      case "interval-join" -> {
        DataStream<Tuple3<String, Long, Long>> onTime =
            records
                .process(
                    new ProcessFunction<Tuple3<String, Long, Long>, Tuple3<String, Long, Long>>() {
                      @Override
                      public void processElement(
                          Tuple3<String, Long, Long> e,
                          Context ctx,
                          org.apache.flink.util.Collector<Tuple3<String, Long, Long>> collector) {
                        if (e.f2 > ctx.timerService().currentWatermark() + 8) {
                          collector.collect(e);
                        }
                      }
                    })
                .returns(RECORD);
        out =
            onTime
                .filter(e -> e.f1 % 2 == 0)
                .keyBy(e -> e.f0)
                .intervalJoin(onTime.filter(e -> e.f1 % 2 != 0).keyBy(e -> e.f0))
                .between(Duration.ofMillis(-3), Duration.ofMillis(5))
                .process(
                    new ProcessJoinFunction<
                        Tuple3<String, Long, Long>,
                        Tuple3<String, Long, Long>,
                        Tuple3<String, Long, Long>>() {
                      @Override
                      public void processElement(
                          Tuple3<String, Long, Long> l,
                          Tuple3<String, Long, Long> r,
                          Context ctx,
                          org.apache.flink.util.Collector<Tuple3<String, Long, Long>> collector) {
                        collector.collect(Tuple3.of(l.f0, l.f1 * 100 + r.f1, ctx.getTimestamp()));
                      }
                    })
                .returns(RECORD);
      }
      default -> throw new IllegalArgumentException("unknown case " + name);
    }
    DataStream<String> lines = out.map(DataStreamCases::format).returns(Types.STRING);
    if (late != null) {
      lines = lines.union(late.map(e -> "late:" + format(e)).returns(Types.STRING));
    }
    return lines;
  }

  static String format(Tuple3<String, Long, Long> e) {
    return e.f0 + "," + e.f1 + "," + e.f2;
  }
}
