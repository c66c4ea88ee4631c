package fjord.oracle;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;

/**
 * Runs a SQL script on Flink's table planner exactly as written, INSERTs included (each awaited
 * until its job finishes, so bounded sources end it): what writes into Kafka with Flink's own
 * connector and formats, where {@link SqlScript} collects the SELECT instead. {@code SET 'k' =
 * 'v'} sets the table configuration, as in SqlScript.
 *
 * <p>Usage: {@code SqlExec SCRIPT}
 */
public final class SqlExec {
  private static final Pattern SET =
      Pattern.compile("(?is)^\\s*SET\\s+'([^']*)'\\s*=\\s*'([^']*)'\\s*$");

  private SqlExec() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: SqlExec SCRIPT");
      System.exit(2);
    }
    String script = Files.readString(Path.of(args[0]), StandardCharsets.UTF_8);
    TableEnvironment env = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
    for (String statement : SqlScript.split(script)) {
      Matcher set = SET.matcher(statement);
      if (set.matches()) {
        env.getConfig().getConfiguration().setString(set.group(1), set.group(2));
      } else {
        TableResult result = env.executeSql(statement);
        if (result.getJobClient().isPresent()) {
          result.await();
        }
      }
    }
  }
}
