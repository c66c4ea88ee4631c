package fjord.oracle;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.StringJoiner;
import java.util.TreeMap;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.cep.CEP;
import org.apache.flink.cep.functions.PatternProcessFunction;
import org.apache.flink.cep.functions.TimedOutPartialMatchHandler;
import org.apache.flink.cep.nfa.aftermatch.AfterMatchSkipStrategy;
import org.apache.flink.cep.pattern.Pattern;
import org.apache.flink.cep.pattern.conditions.IterativeCondition;
import org.apache.flink.cep.pattern.conditions.SimpleCondition;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.KeyedStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.CloseableIterator;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * The oracle of Fjord's CEP tests: runs named Flink CEP patterns (the twins of
 * e2e/tests/flink_cep_oracle.rs) on Flink's local MiniCluster (parallelism 1) over one input
 * file, keyed by the record's key, in event time, and prints every match.
 *
 * <p>Usage: {@code CepCases <input file> <case>...}. Input as DataStreamCases ({@code
 * key,value,ts} records, {@code #wm,ts} watermarks). Output: for each case {@code == case}, then
 * one line per match {@code key|a:v@ts,v@ts;b:v@ts} (parts sorted by name) and {@code
 * timeout:key|...} per timed-out partial match.
 */
public final class CepCases {
  private static final String WATERMARK = "#wm";
  private static final TypeInformation<Tuple3<String, Long, Long>> RECORD =
      Types.TUPLE(Types.STRING, Types.LONG, Types.LONG);
  private static final OutputTag<String> TIMEOUT = new OutputTag<>("timeout", Types.STRING);

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: CepCases <input file> <case>...");
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
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
    env.setParallelism(1);
    DataStream<Tuple3<String, Long, Long>> records =
        env.fromData(input, RECORD)
            .assignTimestampsAndWatermarks(
                WatermarkStrategy.<Tuple3<String, Long, Long>>forGenerator(
                        ctx -> new DataStreamCases.InputWatermarks())
                    .withTimestampAssigner((e, previous) -> e.f2))
            .filter(e -> !e.f0.equals(WATERMARK));
    DataStream<String> all = null;
    for (String name : names) {
      DataStream<String> lines = caseOutput(name, records).map(line -> name + "|" + line).returns(Types.STRING);
      all = all == null ? lines : all.union(lines);
    }
    Map<String, List<String>> outputs = new LinkedHashMap<>();
    names.forEach(name -> outputs.put(name, new ArrayList<>()));
    try (CloseableIterator<String> it = all.executeAndCollect("fjord cep oracle")) {
      while (it.hasNext()) {
        String tagged = it.next();
        int bar = tagged.indexOf('|');
        outputs.get(tagged.substring(0, bar)).add(tagged.substring(bar + 1));
      }
    }
    for (String name : names) {
      System.out.println("== " + name);
      for (String out : outputs.get(name)) {
        System.out.println(out);
      }
    }
    System.out.flush();
  }

  // The event classes of the cases, by value.
  static SimpleCondition<Tuple3<String, Long, Long>> isA() {
    return SimpleCondition.of(e -> e.f1 < 5);
  }

  static SimpleCondition<Tuple3<String, Long, Long>> isB() {
    return SimpleCondition.of(e -> e.f1 >= 5 && e.f1 < 12);
  }

  static SimpleCondition<Tuple3<String, Long, Long>> isX() {
    return SimpleCondition.of(e -> e.f1 >= 12 && e.f1 < 15);
  }

  static SimpleCondition<Tuple3<String, Long, Long>> isC() {
    return SimpleCondition.of(e -> e.f1 >= 15);
  }

  static Duration ms(long n) {
    return Duration.ofMillis(n);
  }

  static Pattern<Tuple3<String, Long, Long>, ?> abPlusC(AfterMatchSkipStrategy skip) {
    return Pattern.<Tuple3<String, Long, Long>>begin("a", skip)
        .where(isA())
        .followedBy("b")
        .where(isB())
        .oneOrMore()
        .followedBy("c")
        .where(isC())
        .within(ms(30));
  }

  /** The pattern of each case (the Rust twins are in flink_cep_oracle.rs). */
  static Pattern<Tuple3<String, Long, Long>, ?> pattern(String name) {
    Pattern<Tuple3<String, Long, Long>, ?> a = Pattern.<Tuple3<String, Long, Long>>begin("a").where(isA());
    return switch (name) {
      case "strict" -> a.next("b").where(isB());
      case "relaxed" -> a.followedBy("b").where(isB());
      case "any" -> a.followedByAny("b").where(isB()).within(ms(20));
      case "times" -> a.followedBy("b").where(isB()).times(2).followedBy("c").where(isC()).within(ms(30));
      case "times-range-consecutive" ->
          a.next("b").where(isB()).times(1, 3).consecutive().followedBy("c").where(isC()).within(ms(30));
      case "one-or-more" -> abPlusC(AfterMatchSkipStrategy.noSkip());
      case "combinations" ->
          a.followedBy("b").where(isB()).times(2).allowCombinations().followedBy("c").where(isC()).within(ms(20));
      case "greedy" ->
          a.followedBy("b").where(isB()).oneOrMore().greedy().followedBy("c").where(isC()).within(ms(30));
      case "greedy-until" ->
          a.followedBy("b").where(isB()).oneOrMore().greedy().until(SimpleCondition.of(e -> e.f1 >= 18))
              .followedBy("c").where(isC()).within(ms(30));
      case "times-greedy" ->
          a.followedBy("b").where(isB()).times(1, 3).greedy().followedBy("c").where(isC()).within(ms(30));
      case "optional-greedy" ->
          a.followedBy("b").where(isB()).oneOrMore().optional().greedy().followedBy("c").where(isC()).within(ms(30));
      case "until" ->
          a.followedBy("b").where(isB()).oneOrMore().until(SimpleCondition.of(e -> e.f1 >= 18))
              .followedBy("c").where(isC()).within(ms(30));
      case "not-next" -> a.notNext("x").where(isX()).followedBy("b").where(isB()).within(ms(20));
      case "not-followed-by" -> a.notFollowedBy("x").where(isX()).followedBy("b").where(isB()).within(ms(20));
      case "not-followed-by-end" -> a.followedBy("b").where(isB()).notFollowedBy("x").where(isX()).within(ms(10));
      case "within-timeout" -> a.followedBy("b").where(isB()).followedBy("c").where(isC()).within(ms(10));
      case "skip-to-next" -> abPlusC(AfterMatchSkipStrategy.skipToNext());
      case "skip-past-last" -> abPlusC(AfterMatchSkipStrategy.skipPastLastEvent());
      case "skip-to-first-b" -> abPlusC(AfterMatchSkipStrategy.skipToFirst("b"));
      case "skip-to-last-b" -> abPlusC(AfterMatchSkipStrategy.skipToLast("b"));
      case "iterative-rising" ->
          Pattern.<Tuple3<String, Long, Long>>begin("up")
              .where(new IterativeCondition<>() {
                @Override
                public boolean filter(Tuple3<String, Long, Long> e, Context<Tuple3<String, Long, Long>> ctx)
                    throws Exception {
                  for (Tuple3<String, Long, Long> p : ctx.getEventsForPattern("up")) {
                    if (p.f1 >= e.f1) {
                      return false;
                    }
                  }
                  return true;
                }
              })
              .times(3)
              .consecutive();
      case "iterative-sum" ->
          a.followedBy("b")
              .where(new IterativeCondition<>() {
                @Override
                public boolean filter(Tuple3<String, Long, Long> e, Context<Tuple3<String, Long, Long>> ctx)
                    throws Exception {
                  if (e.f1 < 5 || e.f1 >= 12) {
                    return false;
                  }
                  long sum = e.f1;
                  for (Tuple3<String, Long, Long> p : ctx.getEventsForPattern("b")) {
                    sum += p.f1;
                  }
                  return sum < 25;
                }
              })
              .oneOrMore()
              .followedBy("c")
              .where(isC())
              .within(ms(30));
      default -> throw new IllegalArgumentException("unknown case " + name);
    };
  }

  /** Prints matches, and timed-out partial matches as {@code timeout:} lines. */
  static final class Format
      extends PatternProcessFunction<Tuple3<String, Long, Long>, String>
      implements TimedOutPartialMatchHandler<Tuple3<String, Long, Long>> {
    @Override
    public void processMatch(
        Map<String, List<Tuple3<String, Long, Long>>> match, Context ctx, Collector<String> out) {
      out.collect(format(match));
    }

    @Override
    public void processTimedOutMatch(Map<String, List<Tuple3<String, Long, Long>>> match, Context ctx) {
      ctx.output(TIMEOUT, "timeout:" + format(match));
    }
  }

  /** Prints matches only. */
  static final class FormatMatches extends PatternProcessFunction<Tuple3<String, Long, Long>, String> {
    @Override
    public void processMatch(
        Map<String, List<Tuple3<String, Long, Long>>> match, Context ctx, Collector<String> out) {
      out.collect(format(match));
    }
  }

  static String format(Map<String, List<Tuple3<String, Long, Long>>> match) {
    String key = match.values().iterator().next().get(0).f0;
    StringJoiner parts = new StringJoiner(";");
    for (Map.Entry<String, List<Tuple3<String, Long, Long>>> part : new TreeMap<>(match).entrySet()) {
      StringJoiner events = new StringJoiner(",");
      for (Tuple3<String, Long, Long> e : part.getValue()) {
        events.add(e.f1 + "@" + e.f2);
      }
      parts.add(part.getKey() + ":" + events);
    }
    return key + "|" + parts;
  }

  static DataStream<String> caseOutput(String name, DataStream<Tuple3<String, Long, Long>> records) {
    KeyedStream<Tuple3<String, Long, Long>, String> keyed = records.keyBy(e -> e.f0);
    if (name.equals("within-timeout")) {
      SingleOutputStreamOperator<String> main = CEP.pattern(keyed, pattern(name)).process(new Format());
      return main.union(main.getSideOutput(TIMEOUT));
    }
    return CEP.pattern(keyed, pattern(name)).process(new FormatMatches());
  }
}
