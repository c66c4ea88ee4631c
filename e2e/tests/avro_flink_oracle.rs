//! Flink is the oracle of the `avro` and `avro-confluent` formats: the Avro schema Fjord derives
//! for a table equals the one Flink's `AvroSchemaConverter` derives; through a real Kafka 4.4
//! broker, Flink SQL (its Kafka connector and `avro` format) reads the topic Fjord's SQL `kafka`
//! sink wrote into the same rows, Fjord's SQL reads the topic Flink SQL wrote, and the two topics
//! hold the same bytes; Flink's format (`AvroRowDataSerializationSchema`) writes each row as Fjord
//! does, byte for byte. The Confluent wire format is checked against Flink's
//! `ConfluentSchemaRegistryCoder` (with Confluent's in-process registry client: no registry
//! server installs from the registries this machine reaches, see docs/connectors/avro.md).
//! Malformed records and an unreachable registry fail the job with errors saying what is wrong.

use fjord::StreamExecutionEnvironment;
use fjord_e2e::flink::{run_avro_format, run_sql_exec, run_sql_script};
use fjord_e2e::{KafkaBroker, KafkaOptions, ProducerRecord};
use fjord_sql::connectors::format::{self, Format};
use fjord_sql::types::{Column, DataType, Row, Schema};

/// The table: every type the Avro format maps, with Flink's name for it.
const COLUMNS: &[(&str, DataType, &str)] = &[
    ("id", DataType::Int, "INT"),
    ("b", DataType::TinyInt, "TINYINT"),
    ("s", DataType::SmallInt, "SMALLINT"),
    ("big", DataType::BigInt, "BIGINT"),
    ("f", DataType::Float, "FLOAT"),
    ("d", DataType::Double, "DOUBLE"),
    ("dec", DataType::Decimal(10, 2), "DECIMAL(10, 2)"),
    ("name", DataType::String, "STRING"),
    ("ts", DataType::Timestamp, "TIMESTAMP(3)"),
    ("day", DataType::Date, "DATE"),
    ("t", DataType::Time(3), "TIME(3)"),
    ("raw", DataType::Bytes, "BYTES"),
    ("ok", DataType::Boolean, "BOOLEAN"),
];

/// The rows, as CSV with NULL as `NULL` (what both Fjord's and Flink's csv formats read). No
/// empty strings: Flink's SQL oracle prints NULL as an empty field.
const ROWS: &[&str] = &[
    "1,-2,300,5000000000,1.5,2.25,12.50,héllo,2024-01-01 12:34:56.789,2024-02-29,12:34:56.789,aGk=,true",
    "2,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL",
    "3,127,-32768,-9223372036854775808,-0.25,1.0E300,-99999999.99,\"a,b\",1969-12-31 23:59:59.999,1900-01-01,00:00:00,AAEC/w==,false",
    "4,-128,32767,9223372036854775807,3.4028235E38,-4.9E-324,0.01,z,2262-04-11 23:47:16.854,9999-12-31,23:59:59.999,AA==,true",
];

fn schema() -> Schema {
    Schema {
        columns: COLUMNS
            .iter()
            .map(|(name, data_type, _)| Column {
                name: (*name).into(),
                data_type: *data_type,
                rowtime: false,
            })
            .collect(),
    }
}

/// Flink's row type of the table.
fn row_type() -> String {
    let fields: Vec<String> = COLUMNS
        .iter()
        .map(|(n, _, t)| format!("`{n}` {t}"))
        .collect();
    format!("ROW<{}>", fields.join(", "))
}

/// The table's columns in DDL.
fn ddl_columns() -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|(n, _, t)| format!("`{n}` {t}"))
        .collect();
    cols.join(", ")
}

/// CSV lines (NULL as `NULL`) as rows, read by Fjord's csv format.
fn rows_of(lines: &[String]) -> Vec<Row> {
    rows_with_null_literal(lines, "NULL")
}

/// CSV lines as rows, read by Fjord's csv format with `null` as the null literal.
fn rows_with_null_literal(lines: &[String], null: &str) -> Vec<Row> {
    let schema = schema();
    lines
        .iter()
        .map(|l| {
            let record = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(l.as_bytes())
                .records()
                .next()
                .unwrap_or_else(|| panic!("no CSV row in {l:?}"))
                .unwrap();
            format::decode_csv(&record, &schema, Some(null), false)
                .unwrap_or_else(|e| panic!("{l}: {e}"))
        })
        .collect()
}

fn lines() -> Vec<String> {
    ROWS.iter().map(|s| s.to_string()).collect()
}

fn expected_rows() -> Vec<Row> {
    rows_of(&lines())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn avro_format() -> Format {
    let options = [("format".to_string(), "avro".to_string())].into();
    format::from_options(&options, &[]).unwrap().0
}

fn run(script: &str) -> Result<(), String> {
    let job = fjord_sql::plan(script).map_err(|e| format!("Fjord refused the script: {e}"))?;
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).map_err(|e| e.to_string())?;
    env.execute("avro oracle")
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Rows of the CSV part files a filesystem sink wrote into `dir`.
fn sink_rows(dir: &std::path::Path) -> Vec<Row> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    let mut rows = rows_of(&lines);
    rows.sort_by_key(|r| r[0].to_sql_string());
    rows
}

#[test]
fn the_table_schema_is_the_avro_schema_flinks_converter_derives() {
    let flink = run_avro_format("schema", &row_type(), false, &[]).unwrap();
    let flink: serde_json::Value = serde_json::from_str(flink.last().unwrap()).unwrap();
    let fjord = fjord_sql::connectors::format_avro::avro_schema_json(&schema(), true).unwrap();
    assert_eq!(fjord, flink);
}

#[test]
fn fjord_and_flink_sql_read_each_others_avro_topics_through_kafka() {
    let broker = KafkaBroker::start_with(KafkaOptions::new("avro-oracle")).unwrap();
    let bootstrap = broker.bootstrap().to_string();
    broker.create_topic("fjord-wrote", 1).unwrap();
    broker.create_topic("flink-wrote", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rows_csv = dir.path().join("rows.csv");
    std::fs::write(&rows_csv, ROWS.join("\n") + "\n").unwrap();
    let expected = expected_rows();
    let cols = ddl_columns();
    let kafka = |topic: &str| {
        format!(
            "'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'avro'"
        )
    };
    let bounded = "'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'";
    let csv_file = format!(
        "'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.null-literal' = 'NULL'",
        rows_csv.display()
    );

    // Flink SQL writes the rows to a topic with its Kafka connector and avro format.
    let flink_writes = dir.path().join("flink-writes.sql");
    std::fs::write(
        &flink_writes,
        format!(
            "SET 'parallelism.default' = '1';
             CREATE TABLE rows_csv ({cols}) WITH ({csv_file});
             CREATE TABLE flink_wrote ({cols}) WITH ({});
             INSERT INTO flink_wrote SELECT * FROM rows_csv;",
            kafka("flink-wrote")
        ),
    )
    .unwrap();
    run_sql_exec(&flink_writes).unwrap();

    // Fjord SQL writes the same rows to another topic, and reads Flink's topic.
    let script = format!(
        "SET 'parallelism.default' = '1';
         CREATE TABLE rows_csv ({cols}) WITH ({csv_file});
         CREATE TABLE fjord_wrote ({cols}) WITH ({});
         CREATE TABLE flink_wrote ({cols}) WITH ({}, {bounded});
         CREATE TABLE fjord_read ({cols}) WITH ('connector' = 'filesystem', 'path' = '{}/read',
           'format' = 'csv', 'csv.null-literal' = 'NULL');
         INSERT INTO fjord_wrote SELECT * FROM rows_csv;
         INSERT INTO fjord_read SELECT * FROM flink_wrote;",
        kafka("fjord-wrote"),
        kafka("flink-wrote"),
        dir.path().display(),
    );
    run(&script).unwrap();
    assert_eq!(sink_rows(&dir.path().join("read")), expected);

    // The two topics hold the same record values, byte for byte.
    let values = |topic: &str| {
        let mut v: Vec<String> = broker
            .read_committed(topic)
            .unwrap()
            .iter()
            .map(|r| hex(r.value.as_deref().expect("a value")))
            .collect();
        v.sort();
        v
    };
    assert_eq!(values("fjord-wrote"), values("flink-wrote"));

    // Flink SQL reads Fjord's topic into the rows (printed with NULL as an empty field).
    let flink_reads = dir.path().join("flink-reads.sql");
    std::fs::write(
        &flink_reads,
        format!(
            "SET 'parallelism.default' = '1';
             CREATE TABLE fjord_wrote ({cols}) WITH ({}, {bounded});
             CREATE TABLE seen ({cols}) WITH ('connector' = 'blackhole');
             INSERT INTO seen SELECT * FROM fjord_wrote;",
            kafka("fjord-wrote")
        ),
    )
    .unwrap();
    let flink = run_sql_script(&flink_reads).unwrap();
    let mut flink_rows = rows_with_null_literal(&flink["seen"], "");
    flink_rows.sort_by_key(|r| r[0].to_sql_string());
    assert_eq!(flink_rows, expected);
    broker.shutdown().unwrap();
}

#[test]
fn fjords_record_values_are_flinks_avro_format_byte_for_byte() {
    let expected = expected_rows();
    let flink_values = run_avro_format("write", &row_type(), false, &lines()).unwrap();
    assert_eq!(flink_values.len(), ROWS.len());
    for (row, flink) in expected.iter().zip(&flink_values) {
        let fjord = format::encode(&avro_format(), &schema(), row).unwrap();
        assert_eq!(hex(&fjord), *flink, "{row:?}");
    }
    let back = run_avro_format("read", &row_type(), false, &flink_values).unwrap();
    assert_eq!(rows_of(&back), expected);
}

#[test]
fn the_confluent_wire_format_is_flinks() {
    let expected = expected_rows();
    let flink = run_avro_format("write", &row_type(), true, &lines()).unwrap();
    let mut framed = Vec::new();
    for (row, flink) in expected.iter().zip(&flink) {
        let datum = format::encode(&avro_format(), &schema(), row).unwrap();
        // Flink's registry gave the schema id 1.
        let fjord = fjord_avro::wire::frame(1, &datum);
        assert_eq!(hex(&fjord), *flink, "{row:?}");
        let flink_bytes = unhex(flink);
        let (id, back) = fjord_avro::wire::unframe(&flink_bytes).unwrap();
        assert_eq!((id, back), (1, &datum[..]));
        framed.push(hex(&fjord));
    }
    let flink_rows = run_avro_format("read", &row_type(), true, &framed).unwrap();
    assert_eq!(rows_of(&flink_rows), expected);
}

#[test]
fn a_malformed_record_or_an_unreachable_registry_fails_the_job_saying_what_is_wrong() {
    let broker = KafkaBroker::start_with(KafkaOptions::new("avro-bad")).unwrap();
    let bootstrap = broker.bootstrap().to_string();
    broker.create_topic("bad", 1).unwrap();
    broker.create_topic("good", 1).unwrap();
    broker.create_topic("out", 1).unwrap();
    let good = format::encode(&avro_format(), &schema(), &expected_rows()[0]).unwrap();
    broker
        .produce(
            "bad",
            &[
                ProducerRecord::value(good.clone()),
                ProducerRecord::value(b"{\"id\": 1}".to_vec()),
            ],
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = |format: &str, source: &str, sink: &str| {
        format!(
            "SET 'parallelism.default' = '1';
             CREATE TABLE src ({cols}) WITH ('connector' = 'kafka', 'topic' = '{source}',
               'properties.bootstrap.servers' = '{bootstrap}', 'scan.startup.mode' = 'earliest-offset',
               'scan.bounded.mode' = 'latest-offset', {format});
             CREATE TABLE dst ({cols}) WITH ({sink});
             INSERT INTO dst SELECT * FROM src;",
            cols = ddl_columns(),
        )
    };
    let files = format!(
        "'connector' = 'filesystem', 'path' = '{}/out', 'format' = 'csv'",
        dir.path().display()
    );
    let e = run(&script("'format' = 'avro'", "bad", &files)).unwrap_err();
    assert!(
        e.contains("malformed record in topic bad, partition 0, offset 1")
            && e.contains("malformed Avro record"),
        "{e}"
    );

    // Nothing listens on this port: the registry is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let registry =
        format!("'format' = 'avro-confluent', 'avro-confluent.url' = 'http://127.0.0.1:{port}'");
    let to_kafka = format!(
        "'connector' = 'kafka', 'topic' = 'out', 'properties.bootstrap.servers' = '{bootstrap}', {registry}"
    );
    broker
        .produce("good", &[ProducerRecord::value(good.clone())])
        .unwrap();
    broker
        .produce(
            "out",
            &[ProducerRecord::value(fjord_avro::wire::frame(1, &good))],
        )
        .unwrap();
    // Writing needs the schema's id, reading the writer schema: both name the registry.
    for (source_format, source, sink) in [
        ("'format' = 'avro'", "good", to_kafka.as_str()),
        (registry.as_str(), "out", files.as_str()),
    ] {
        let e = run(&script(source_format, source, sink)).unwrap_err();
        assert!(
            e.contains(&format!("schema registry at http://127.0.0.1:{port}"))
                && e.contains("cannot reach the registry"),
            "{e}"
        );
    }
    broker.shutdown().unwrap();
}
