package fjord.oracle;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.apache.flink.util.CloseableIterator;

/**
 * The SQL oracle: runs a Fjord SQL script on Apache Flink's table planner (streaming mode, local
 * MiniCluster). Every statement runs as written, except {@code SET 'k' = 'v'}, which sets the
 * table configuration as Flink's SQL client does, and {@code INSERT INTO sink SELECT ...}, which
 * runs the SELECT and collects its rows, so no sink's file-commit rules get in the way; {@code
 * EXECUTE INSERT INTO sink SELECT ...} runs the INSERT for real (the sink writes, for example
 * Parquet files for Fjord to read) and waits for the job to finish. Prints
 * {@code == sink} and then each row as Fjord's CSV format writes it (NULL empty, TIMESTAMP
 * {@code yyyy-MM-dd HH:mm:ss[.fff]} without trailing zeros, DOUBLE as Java's Double.toString, DECIMAL
 * without trailing zeros as Jackson writes it: {@code 12.5}, {@code 2E+1}, TIME {@code HH:mm:ss[.fff]}
 * without trailing zeros, BYTES as base64).
 *
 * <p>Usage: {@code SqlScript SCRIPT...}: several scripts run one after the other in this JVM (each
 * with a table environment of its own), each output after a line {@code === SCRIPT}; starting
 * the JVM and unpacking the planner once instead of once per script is most of the time saved.
 */
public final class SqlScript {
  private static final Pattern INSERT =
      Pattern.compile("(?is)^\\s*INSERT\\s+INTO\\s+([`\\w]+)\\s+(.*)$");

  private static final Pattern EXECUTE_INSERT =
      Pattern.compile("(?is)^\\s*EXECUTE\\s+(INSERT\\s+INTO\\s+.*)$");

  private static final Pattern SET =
      Pattern.compile("(?is)^\\s*SET\\s+'([^']*)'\\s*=\\s*'([^']*)'\\s*$");

  private SqlScript() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 0) {
      System.err.println("usage: SqlScript SCRIPT...");
      System.exit(2);
    }
    // Exit explicitly, also after a failure: a job's non-daemon thread (a file source's fetcher
    // after the job ended, seen with the Parquet reader) would otherwise keep the JVM alive.
    try {
      for (String path : args) {
        if (args.length > 1) {
          System.out.println("=== " + path);
        }
        run(Files.readString(Path.of(path), StandardCharsets.UTF_8));
      }
    } catch (Throwable t) {
      t.printStackTrace();
      System.out.flush();
      System.exit(1);
    }
    System.out.flush();
    System.exit(0);
  }

  private static void run(String script) throws Exception {
    TableEnvironment env = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
    for (String statement : split(script)) {
      Matcher insert = INSERT.matcher(statement);
      Matcher execute = EXECUTE_INSERT.matcher(statement);
      Matcher set = SET.matcher(statement);
      if (set.matches()) {
        // The SQL client's SET; a TableEnvironment takes it as configuration.
        env.getConfig().getConfiguration().setString(set.group(1), set.group(2));
      } else if (execute.matches()) {
        env.executeSql(execute.group(1)).await();
      } else if (insert.matches()) {
        System.out.println("== " + insert.group(1).replace("`", ""));
        try (CloseableIterator<Row> rows = env.sqlQuery(insert.group(2)).execute().collect()) {
          while (rows.hasNext()) {
            System.out.println(format(rows.next()));
          }
        }
      } else {
        env.executeSql(statement);
      }
    }
  }

  /** Statements split at ';' outside quotes and '--' comments; blank ones dropped. */
  static List<String> split(String script) {
    List<String> out = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    boolean quoted = false;
    for (int i = 0; i < script.length(); i++) {
      char c = script.charAt(i);
      if (!quoted && c == '-' && i + 1 < script.length() && script.charAt(i + 1) == '-') {
        while (i < script.length() && script.charAt(i) != '\n') {
          i++;
        }
        current.append('\n');
        continue;
      }
      if (c == '\'') {
        quoted = !quoted;
      }
      if (c == ';' && !quoted) {
        if (!current.toString().isBlank()) {
          out.add(current.toString());
        }
        current.setLength(0);
      } else {
        current.append(c);
      }
    }
    if (!current.toString().isBlank()) {
      out.add(current.toString());
    }
    return out;
  }

  static String format(Row row) {
    StringBuilder line = new StringBuilder();
    if (row.getKind() != RowKind.INSERT) {
      line.append(row.getKind().shortString()).append(' ');
    }
    for (int i = 0; i < row.getArity(); i++) {
      if (i > 0) {
        line.append(',');
      }
      line.append(field(row.getField(i)));
    }
    return line.toString();
  }

  static String field(Object v) {
    if (v == null) {
      return "";
    }
    if (v instanceof LocalDateTime t) {
      String s =
          String.format(
              "%04d-%02d-%02d %02d:%02d:%02d",
              t.getYear(), t.getMonthValue(), t.getDayOfMonth(), t.getHour(), t.getMinute(),
              t.getSecond());
      int millis = t.getNano() / 1_000_000;
      if (millis != 0) {
        s += ("." + String.format("%03d", millis)).replaceAll("0+$", "");
      }
      return s;
    }
    if (v instanceof LocalTime t) {
      // As Flink's csv format writes a TIME: HH:mm:ss, the fraction without trailing zeros.
      String s = String.format("%02d:%02d:%02d", t.getHour(), t.getMinute(), t.getSecond());
      int millis = t.getNano() / 1_000_000;
      if (millis != 0) {
        s += ("." + String.format("%03d", millis)).replaceAll("0+$", "");
      }
      return s;
    }
    if (v instanceof byte[] b) {
      // As Flink's csv format writes BYTES.
      return Base64.getEncoder().encodeToString(b);
    }
    if (v instanceof BigDecimal d) {
      // As Flink's csv format writes a DECIMAL (Jackson's normalized node): 12.5, 2E+1, 0.
      return d.signum() == 0 ? "0" : d.stripTrailingZeros().toString();
    }
    String s = v.toString();
    if (s.contains(",") || s.contains("\"") || s.contains("\n")) {
      return "\"" + s.replace("\"", "\"\"") + "\"";
    }
    return s;
  }
}
