package fjord.oracle;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import org.apache.flink.avro.registry.confluent.shaded.io.confluent.kafka.schemaregistry.client.MockSchemaRegistryClient;
import org.apache.flink.avro.shaded.org.apache.avro.Schema;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.formats.avro.AvroRowDataDeserializationSchema;
import org.apache.flink.formats.avro.AvroRowDataSerializationSchema;
import org.apache.flink.formats.avro.AvroToRowDataConverters;
import org.apache.flink.formats.avro.RegistryAvroDeserializationSchema;
import org.apache.flink.formats.avro.RegistryAvroSerializationSchema;
import org.apache.flink.formats.avro.RowDataToAvroConverters;
import org.apache.flink.formats.avro.SchemaCoder;
import org.apache.flink.formats.avro.registry.confluent.ConfluentSchemaRegistryCoder;
import org.apache.flink.formats.avro.typeutils.AvroSchemaConverter;
import org.apache.flink.formats.csv.CsvRowDataDeserializationSchema;
import org.apache.flink.formats.csv.CsvRowDataSerializationSchema;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.runtime.typeutils.InternalTypeInfo;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.utils.LogicalTypeParser;

/**
 * Flink's {@code avro} and {@code avro-confluent} SQL formats one record at a time: the very
 * (de)serialization schemas their format factories hand the Kafka connector for each record value
 * ({@code AvroRowDataSerializationSchema} / {@code AvroRowDataDeserializationSchema}, over
 * {@code RegistryAvro(De)SerializationSchema} with a {@code ConfluentSchemaRegistryCoder} for
 * {@code avro-confluent}), and the table schema's Avro schema from {@code AvroSchemaConverter}.
 *
 * <p>Usage ({@code ROW} is the table's row type, such as {@code ROW<id INT, name STRING>}):
 *
 * <ul>
 *   <li>{@code AvroFormats schema ROW}: prints the Avro schema Flink derives for the table.
 *   <li>{@code AvroFormats write ROW [confluent]}: reads CSV rows (Flink's csv format, NULL as
 *       {@code NULL}) from stdin and prints each row's record value in hex.
 *   <li>{@code AvroFormats read ROW [confluent]}: reads record values in hex from stdin and prints
 *       each row as CSV (NULL as {@code NULL}).
 * </ul>
 *
 * <p>{@code confluent}: the Confluent wire format with the schema registered under subject
 * {@code topic-value} in Confluent's in-process {@code MockSchemaRegistryClient} (from Flink's
 * shaded jar; a real registry server cannot be installed from Maven Central), which gives the
 * table schema id 1.
 */
public final class AvroFormats {
  private static final MockSchemaRegistryClient REGISTRY = new MockSchemaRegistryClient();

  private AvroFormats() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: AvroFormats schema|write|read ROW<...> [confluent]");
      System.exit(2);
    }
    RowType rowType =
        (RowType)
            LogicalTypeParser.parse(args[1], AvroFormats.class.getClassLoader()).copy(false);
    boolean confluent = args.length > 2 && args[2].equals("confluent");
    Schema schema = AvroSchemaConverter.convertToSchema(rowType);
    SchemaCoder.SchemaCoderProvider coder =
        () -> new ConfluentSchemaRegistryCoder("topic-value", REGISTRY);
    SerializationSchema<RowData> avroOut =
        confluent
            ? new AvroRowDataSerializationSchema(
                rowType,
                RegistryAvroSerializationSchema.forGeneric(schema, coder),
                RowDataToAvroConverters.createConverter(rowType))
            : new AvroRowDataSerializationSchema(rowType);
    avroOut.open(null);
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    HexFormat hex = HexFormat.of();
    switch (args[0]) {
      case "schema" -> System.out.println(schema);
      case "write" -> {
        DeserializationSchema<RowData> csvIn =
            new CsvRowDataDeserializationSchema.Builder(rowType, InternalTypeInfo.of(rowType))
                .setNullLiteral("NULL")
                .build();
        csvIn.open(null);
        for (String line; (line = in.readLine()) != null; ) {
          if (line.isEmpty()) continue;
          RowData row = csvIn.deserialize(line.getBytes(StandardCharsets.UTF_8));
          System.out.println(hex.formatHex(avroOut.serialize(row)));
        }
      }
      case "read" -> {
        if (confluent) {
          // Registers the table schema (id 1), as Flink's sink would on its first record.
          avroOut.serialize(new GenericRowData(rowType.getFieldCount()));
        }
        DeserializationSchema<RowData> avroIn =
            confluent
                ? new AvroRowDataDeserializationSchema(
                    new RegistryAvroDeserializationSchema<>(
                        org.apache.flink.avro.shaded.org.apache.avro.generic.GenericRecord.class,
                        schema,
                        coder),
                    AvroToRowDataConverters.createRowConverter(rowType),
                    InternalTypeInfo.of(rowType))
                : new AvroRowDataDeserializationSchema(rowType, InternalTypeInfo.of(rowType));
        avroIn.open(null);
        CsvRowDataSerializationSchema.Builder b = new CsvRowDataSerializationSchema.Builder(rowType);
        SerializationSchema<RowData> csvOut = b.setNullLiteral("NULL").build();
        csvOut.open(null);
        for (String line; (line = in.readLine()) != null; ) {
          if (line.isEmpty()) continue;
          RowData row = avroIn.deserialize(hex.parseHex(line.trim()));
          System.out.println(new String(csvOut.serialize(row), StandardCharsets.UTF_8).strip());
        }
      }
      default -> {
        System.err.println("unknown mode " + args[0]);
        System.exit(2);
      }
    }
  }
}
