package fjord.oracle;

import org.apache.flink.formats.protobuf.PbFormatConfig;
import org.apache.flink.formats.protobuf.deserialize.PbRowDataDeserializationSchema;
import org.apache.flink.formats.protobuf.serialize.PbRowDataSerializationSchema;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.runtime.typeutils.InternalTypeInfo;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.utils.LogicalTypeParser;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;

/**
 * Flink's protobuf format (flink-protobuf: PbRowDataDeserializationSchema and
 * PbRowDataSerializationSchema, the code Flink SQL's 'format' = 'protobuf' runs) as an oracle:
 *
 * <pre>
 *   ProtobufFormat decode MESSAGE_CLASS ROW_TYPE READ_DEFAULT_VALUES IN OUT
 *       IN: one message per line, 'x' and its bytes in hex ('x' alone: the empty message,
 *       which is a valid one); OUT: one row per line, CSV in Fjord's conventions
 *       (NULL as \\N, BYTES base64, numbers as Java prints them).
 *   ProtobufFormat encode MESSAGE_CLASS ROW_TYPE READ_DEFAULT_VALUES IN OUT
 *       IN: one row per line in that CSV (no quoting: values without commas); OUT: lines as
 *       decode's IN.
 * </pre>
 *
 * ROW_TYPE is Flink's type string, e.g. "ROW<id BIGINT, name STRING>". The message class comes
 * from the classpath (flink.sh compiles the .proto with protoc first).
 */
public final class ProtobufFormat {
    public static void main(String[] args) throws Exception {
        if (args.length != 6) {
            throw new IllegalArgumentException(
                    "usage: decode|encode MESSAGE_CLASS ROW_TYPE READ_DEFAULT_VALUES IN OUT");
        }
        String mode = args[0];
        RowType rowType =
                (RowType) LogicalTypeParser.parse(args[2], ProtobufFormat.class.getClassLoader());
        PbFormatConfig config =
                new PbFormatConfig(args[1], false, Boolean.parseBoolean(args[3]), "");
        List<String> in = Files.readAllLines(Path.of(args[4]), StandardCharsets.UTF_8);
        List<String> out = new ArrayList<>();
        HexFormat hex = HexFormat.of();
        if (mode.equals("decode")) {
            PbRowDataDeserializationSchema schema =
                    new PbRowDataDeserializationSchema(
                            rowType, InternalTypeInfo.of(rowType), config);
            schema.open(null);
            for (String line : in) {
                if (line.isEmpty()) {
                    continue;
                }
                out.add(text(schema.deserialize(hex.parseHex(line.substring(1))), rowType));
            }
        } else if (mode.equals("encode")) {
            PbRowDataSerializationSchema schema = new PbRowDataSerializationSchema(rowType, config);
            schema.open(null);
            for (String line : in) {
                if (line.isEmpty()) {
                    continue;
                }
                out.add("x" + hex.formatHex(schema.serialize(row(line, rowType))));
            }
        } else {
            throw new IllegalArgumentException("mode must be decode or encode, not " + mode);
        }
        Files.write(Path.of(args[5]), out, StandardCharsets.UTF_8);
    }

    private static String text(RowData row, RowType type) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < type.getFieldCount(); i++) {
            if (i > 0) {
                b.append(',');
            }
            if (row.isNullAt(i)) {
                b.append("\\N");
                continue;
            }
            LogicalType t = type.getTypeAt(i);
            switch (t.getTypeRoot()) {
                case BOOLEAN: b.append(row.getBoolean(i)); break;
                case TINYINT: b.append(row.getByte(i)); break;
                case SMALLINT: b.append(row.getShort(i)); break;
                case INTEGER: b.append(row.getInt(i)); break;
                case BIGINT: b.append(row.getLong(i)); break;
                case FLOAT: b.append(row.getFloat(i)); break;
                case DOUBLE: b.append(row.getDouble(i)); break;
                case CHAR:
                case VARCHAR: b.append(row.getString(i).toString()); break;
                case BINARY:
                case VARBINARY: b.append(Base64.getEncoder().encodeToString(row.getBinary(i))); break;
                default: throw new IllegalArgumentException("no text for " + t);
            }
        }
        return b.toString();
    }

    private static RowData row(String line, RowType type) {
        String[] fields = line.split(",", -1);
        GenericRowData row = new GenericRowData(type.getFieldCount());
        for (int i = 0; i < type.getFieldCount(); i++) {
            String f = i < fields.length ? fields[i] : "";
            if (f.equals("\\N")) {
                continue;
            }
            LogicalType t = type.getTypeAt(i);
            Object v;
            switch (t.getTypeRoot()) {
                case BOOLEAN: v = Boolean.parseBoolean(f); break;
                case TINYINT: v = Byte.parseByte(f); break;
                case SMALLINT: v = Short.parseShort(f); break;
                case INTEGER: v = Integer.parseInt(f); break;
                case BIGINT: v = Long.parseLong(f); break;
                case FLOAT: v = Float.parseFloat(f); break;
                case DOUBLE: v = Double.parseDouble(f); break;
                case CHAR:
                case VARCHAR: v = StringData.fromString(f); break;
                case BINARY:
                case VARBINARY: v = Base64.getDecoder().decode(f); break;
                default: throw new IllegalArgumentException("no value for " + t);
            }
            row.setField(i, v);
        }
        return row;
    }
}
