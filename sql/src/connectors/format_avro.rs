//! Flink's `avro` and `avro-confluent` formats for the connectors that carry one row per
//! message (`kafka`, `rabbitmq`, `activemq`, `kinesis`): the table's columns as an Avro record
//! schema exactly as Flink's `AvroSchemaConverter` derives it, rows to Avro datums and back
//! (`fjord-avro`), and for `avro-confluent` the Confluent wire format with the writer schema
//! registered in (and fetched from) a schema registry.
//!
//! Every Fjord column is nullable, so every field is a union `["null", T]` with default null,
//! as Flink writes a table without `NOT NULL` columns.

use crate::types::{DataType, Row, Schema, Value};
use apache_avro::types::Value as Avro;
use fjord_avro::{ConfluentDecoder, ConfluentEncoder, SchemaRegistryClient};
use num_bigint::BigInt;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// The options of the `avro` format (Flink's names).
pub const AVRO_OPTIONS: &[&str] = &["avro.encoding", "avro.timestamp_mapping.legacy"];

/// The options of the `avro-confluent` format (Flink's names).
pub const CONFLUENT_OPTIONS: &[&str] = &[
    "avro-confluent.url",
    "avro-confluent.subject",
    "avro-confluent.basic-auth.credentials-source",
    "avro-confluent.basic-auth.user-info",
    "avro-confluent.bearer-auth.credentials-source",
    "avro-confluent.bearer-auth.token",
    "avro.timestamp_mapping.legacy",
];

/// The Avro record name Flink gives a table's row (`AvroSchemaConverter`'s default).
pub const RECORD_NAME: &str = "org.apache.flink.avro.generated.record";

/// The schema registry of an `avro-confluent` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// `avro-confluent.url`.
    pub url: String,
    /// `avro-confluent.subject`; a `kafka` table defaults it to `<topic>-value`.
    pub subject: Option<String>,
    /// `avro-confluent.basic-auth.user-info` (`user:password`).
    pub user_info: Option<String>,
    /// `avro-confluent.bearer-auth.token`.
    pub bearer_token: Option<String>,
}

/// The `avro` format, or `avro-confluent` with its registry.
#[derive(Clone)]
pub struct AvroFormat {
    /// `Some` for `avro-confluent`.
    pub registry: Option<Registry>,
    /// `avro.timestamp_mapping.legacy` (Flink's default `true`: TIMESTAMP as
    /// `timestamp-millis`; `false`: `local-timestamp-millis`).
    pub legacy_timestamps: bool,
    /// What is built once per table (shared by the clones of the format).
    runtime: Arc<Runtime>,
}

#[derive(Default)]
struct Runtime {
    schema: OnceLock<Arc<apache_avro::Schema>>,
    encoder: OnceLock<Arc<ConfluentEncoder>>,
    decoder: OnceLock<ConfluentDecoder>,
}

impl PartialEq for AvroFormat {
    fn eq(&self, other: &Self) -> bool {
        self.registry == other.registry && self.legacy_timestamps == other.legacy_timestamps
    }
}

impl Eq for AvroFormat {}

impl std::fmt::Debug for AvroFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroFormat")
            .field("registry", &self.registry.as_ref().map(|r| &r.url))
            .field("legacy_timestamps", &self.legacy_timestamps)
            .finish()
    }
}

impl AvroFormat {
    /// Reads the options of `format` (`avro` or `avro-confluent`; the caller has checked that
    /// no other options are set).
    ///
    /// # Errors
    /// `avro-confluent` without `avro-confluent.url`, `avro.encoding` other than `binary`,
    /// credentials sources other than `USER_INFO` / `STATIC_TOKEN`, malformed values.
    pub fn from_options(format: &str, o: &BTreeMap<String, String>) -> Result<Self, String> {
        if let Some(e) = o.get("avro.encoding")
            && !e.eq_ignore_ascii_case("binary")
        {
            return Err(format!(
                "'avro.encoding' = '{e}' is not supported; Fjord reads and writes Avro's binary encoding ('binary')"
            ));
        }
        let legacy_timestamps = super::bool_option(o, "avro.timestamp_mapping.legacy", true)?;
        let registry = if format == "avro-confluent" {
            let url = o
                .get("avro-confluent.url")
                .filter(|u| !u.trim().is_empty())
                .ok_or("format 'avro-confluent' needs 'avro-confluent.url', the schema registry's URL (such as 'http://localhost:8081')")?
                .trim()
                .to_string();
            for (key, expected) in [
                ("avro-confluent.basic-auth.credentials-source", "USER_INFO"),
                (
                    "avro-confluent.bearer-auth.credentials-source",
                    "STATIC_TOKEN",
                ),
            ] {
                if let Some(v) = o.get(key)
                    && v != expected
                {
                    return Err(format!(
                        "'{key}' = '{v}' is not supported; use '{expected}' with the credentials in the table's options"
                    ));
                }
            }
            let user_info = o.get("avro-confluent.basic-auth.user-info").cloned();
            if let Some(u) = &user_info
                && !u.contains(':')
            {
                return Err("'avro-confluent.basic-auth.user-info' must be 'user:password'".into());
            }
            Some(Registry {
                url,
                subject: o.get("avro-confluent.subject").cloned(),
                user_info,
                bearer_token: o.get("avro-confluent.bearer-auth.token").cloned(),
            })
        } else {
            None
        };
        Ok(AvroFormat {
            registry,
            legacy_timestamps,
            runtime: Arc::default(),
        })
    }

    /// Sets the registry subject when the table did not (a `kafka` table: `<topic>-value`).
    pub fn default_subject(&mut self, subject: impl FnOnce() -> String) {
        if let Some(r) = &mut self.registry
            && r.subject.is_none()
        {
            r.subject = Some(subject());
        }
    }

    /// The format's name.
    pub fn name(&self) -> &'static str {
        if self.registry.is_some() {
            "avro-confluent"
        } else {
            "avro"
        }
    }

    /// The Avro schema of the table (built once).
    ///
    /// # Errors
    /// A column type Avro has no mapping for (an INTERVAL).
    pub fn schema(&self, schema: &Schema) -> Result<Arc<apache_avro::Schema>, String> {
        if let Some(s) = self.runtime.schema.get() {
            return Ok(s.clone());
        }
        let json = avro_schema_json(schema, self.legacy_timestamps)?;
        let parsed = fjord_avro::parse_schema(&json.to_string()).map_err(|e| e.to_string())?;
        Ok(self.runtime.schema.get_or_init(|| Arc::new(parsed)).clone())
    }

    fn client(&self, r: &Registry) -> Result<Arc<SchemaRegistryClient>, String> {
        shared_client(r)
    }

    /// One row as a message body: the Avro datum, in the wire format for `avro-confluent`.
    ///
    /// # Errors
    /// A value that does not fit its column's Avro type (a DECIMAL wider than its column), the
    /// registry's refusal or absence (`avro-confluent`), a missing subject.
    pub fn encode(&self, schema: &Schema, row: &Row) -> Result<Vec<u8>, String> {
        let avro_schema = self.schema(schema)?;
        let value = row_to_avro(schema, row, self.legacy_timestamps)?;
        let datum =
            fjord_avro::datum::encode_exact(&avro_schema, value).map_err(|e| e.to_string())?;
        let Some(r) = &self.registry else {
            return Ok(datum);
        };
        let encoder = match self.runtime.encoder.get() {
            Some(e) => e.clone(),
            None => {
                let subject = r.subject.clone().ok_or(
                    "format 'avro-confluent' writes need 'avro-confluent.subject', the subject to register the schema under",
                )?;
                let e = Arc::new(ConfluentEncoder::new(
                    self.client(r)?,
                    subject,
                    (*avro_schema).clone(),
                ));
                self.runtime.encoder.get_or_init(|| e).clone()
            }
        };
        encoder.frame(&datum).map_err(|e| e.to_string())
    }

    /// The row of one message body.
    ///
    /// # Errors
    /// A malformed datum, an unknown schema id or an unreachable registry
    /// (`avro-confluent`), a value that does not read as its column's type.
    pub fn decode(&self, schema: &Schema, body: &[u8]) -> Result<Row, String> {
        let avro_schema = self.schema(schema)?;
        let value = match &self.registry {
            None => fjord_avro::decode_value(&avro_schema, None, body),
            Some(r) => {
                let decoder = match self.runtime.decoder.get() {
                    Some(d) => d,
                    None => {
                        let d = ConfluentDecoder::new(self.client(r)?)
                            .with_reader_schema((*avro_schema).clone());
                        self.runtime.decoder.get_or_init(|| d)
                    }
                };
                decoder.decode_value(body)
            }
        }
        .map_err(|e| e.to_string())?;
        avro_to_row(schema, value)
    }
}

/// One client per registry (URL and credentials) in the process, so its caches of ids and
/// schemas serve every table and subtask.
fn shared_client(r: &Registry) -> Result<Arc<SchemaRegistryClient>, String> {
    static CLIENTS: OnceLock<Mutex<HashMap<Registry, Arc<SchemaRegistryClient>>>> = OnceLock::new();
    let key = Registry {
        subject: None,
        ..r.clone()
    };
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(c) = clients.get(&key) {
        return Ok(c.clone());
    }
    let mut c = SchemaRegistryClient::new(&r.url).map_err(|e| e.to_string())?;
    if let Some((user, password)) = r.user_info.as_deref().and_then(|u| u.split_once(':')) {
        c = c.basic_auth(user, password);
    }
    if let Some(t) = &r.bearer_token {
        c = c.bearer_token(t.clone());
    }
    let c = Arc::new(c);
    clients.insert(key, c.clone());
    Ok(c)
}

impl std::hash::Hash for Registry {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (
            &self.url,
            &self.subject,
            &self.user_info,
            &self.bearer_token,
        )
            .hash(state);
    }
}

/// The Avro schema (JSON) of a table's row, as Flink's `AvroSchemaConverter.convertToSchema`
/// derives it from the table's (NOT NULL) row type: a record named
/// `org.apache.flink.avro.generated.record`, one field per column, each nullable column a union
/// `["null", T]` with default null. TINYINT, SMALLINT and INT are `int`; BIGINT `long`;
/// DECIMAL(p, s) `bytes` with logical type `decimal`; TIMESTAMP(3) `long` with
/// `timestamp-millis` (`local-timestamp-millis` without the legacy mapping); DATE `int` with
/// `date`; TIME `int` with `time-millis`; BYTES `bytes`; STRING `string`.
///
/// # Errors
/// An INTERVAL column (not a table type).
pub fn avro_schema_json(
    schema: &Schema,
    legacy_timestamps: bool,
) -> Result<serde_json::Value, String> {
    use serde_json::json;
    let timestamp_type = if legacy_timestamps {
        "timestamp-millis"
    } else {
        "local-timestamp-millis"
    };
    let mut fields = Vec::with_capacity(schema.columns.len());
    for c in &schema.columns {
        let t = match c.data_type {
            DataType::Boolean => json!("boolean"),
            DataType::TinyInt | DataType::SmallInt | DataType::Int => json!("int"),
            DataType::BigInt => json!("long"),
            DataType::Float => json!("float"),
            DataType::Double => json!("double"),
            DataType::String => json!("string"),
            DataType::Bytes => json!("bytes"),
            DataType::Decimal(p, s) => {
                json!({"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s})
            }
            DataType::Timestamp => json!({"type": "long", "logicalType": timestamp_type}),
            DataType::Date => json!({"type": "int", "logicalType": "date"}),
            DataType::Time(_) => json!({"type": "int", "logicalType": "time-millis"}),
            DataType::TimestampLtz => json!({"type": "long", "logicalType": "timestamp-millis"}),
            DataType::Interval => {
                return Err(format!(
                    "column '{}': an INTERVAL has no Avro type; cast it to BIGINT",
                    c.name
                ));
            }
            DataType::Row(_) | DataType::Array(_) | DataType::Map(..) => {
                return Err(format!(
                    "column '{}': {} is not supported by Fjord's avro format yet; select its fields or CAST it to STRING",
                    c.name, c.data_type
                ));
            }
        };
        fields.push(json!({"name": c.name, "type": ["null", t], "default": null}));
    }
    Ok(json!({
        "type": "record",
        "name": "record",
        "namespace": "org.apache.flink.avro.generated",
        "fields": fields,
    }))
}

/// A row as the Avro record of its table's schema.
pub(crate) fn row_to_avro(
    schema: &Schema,
    row: &Row,
    legacy_timestamps: bool,
) -> Result<Avro, String> {
    let mut fields = Vec::with_capacity(schema.columns.len());
    for (c, v) in schema.columns.iter().zip(row) {
        let inner = match (v, c.data_type) {
            (Value::Null, _) => {
                fields.push((c.name.clone(), Avro::Union(0, Box::new(Avro::Null))));
                continue;
            }
            (Value::Boolean(b), _) => Avro::Boolean(*b),
            (Value::TinyInt(i), _) => Avro::Int(i32::from(*i)),
            (Value::SmallInt(i), _) => Avro::Int(i32::from(*i)),
            (Value::Int(i), _) => Avro::Int(*i),
            (Value::BigInt(i), _) => Avro::Long(*i),
            (Value::Float(f), _) => Avro::Float(*f),
            (Value::Double(d), _) => Avro::Double(*d),
            (Value::String(s), _) => Avro::String(s.clone()),
            (Value::Bytes(b), _) => Avro::Bytes(b.clone()),
            (Value::Timestamp(ms), _) if legacy_timestamps => Avro::TimestampMillis(*ms),
            (Value::Timestamp(ms), _) => Avro::LocalTimestampMillis(*ms),
            (Value::Date(d), _) => Avro::Date(*d),
            (Value::Time(ms, _), _) => Avro::TimeMillis(*ms),
            (Value::Decimal(d), DataType::Decimal(p, s)) => {
                let d = d.rescale(p, s).ok_or_else(|| {
                    format!(
                        "column '{}': {} does not fit DECIMAL({p}, {s})",
                        c.name,
                        d.to_plain_string()
                    )
                })?;
                // The unscaled value in big-endian two's complement, as few bytes as Java's
                // BigInteger.toByteArray() (what Flink writes).
                Avro::Decimal(apache_avro::Decimal::from(
                    BigInt::from(d.unscaled).to_signed_bytes_be(),
                ))
            }
            (other, t) => {
                return Err(format!(
                    "column '{}' of type {t} holds {other:?}, which Avro cannot write as that type",
                    c.name
                ));
            }
        };
        fields.push((c.name.clone(), Avro::Union(1, Box::new(inner))));
    }
    Ok(Avro::Record(fields))
}

/// A decoded Avro record as a row of the table (fields by column name; a field the record does
/// not have is NULL).
pub(crate) fn avro_to_row(schema: &Schema, value: Avro) -> Result<Row, String> {
    let Avro::Record(fields) = value else {
        return Err(format!("the datum is not a record but {value:?}"));
    };
    let mut by_name: HashMap<String, Avro> = fields.into_iter().collect();
    schema
        .columns
        .iter()
        .map(|c| match by_name.remove(&c.name) {
            None => Ok(Value::Null),
            Some(v) => read_value(v, c.data_type).map_err(|e| format!("column '{}': {e}", c.name)),
        })
        .collect()
}

/// One Avro value as a value of a column type (as Flink's `AvroToRowDataConverters`).
fn read_value(v: Avro, t: DataType) -> Result<Value, String> {
    let bad = |v: &Avro| format!("cannot read the Avro value {v:?} as {t}");
    Ok(match (v, t) {
        (Avro::Union(_, inner), t) => return read_value(*inner, t),
        (Avro::Null, _) => Value::Null,
        (Avro::Boolean(b), DataType::Boolean) => Value::Boolean(b),
        // Flink narrows an int to TINYINT / SMALLINT as Java's (byte) / (short) casts do.
        (Avro::Int(i), DataType::TinyInt) => Value::TinyInt(i as i8),
        (Avro::Int(i), DataType::SmallInt) => Value::SmallInt(i as i16),
        (Avro::Int(i), DataType::Int) => Value::Int(i),
        (Avro::Int(i), DataType::BigInt) => Value::BigInt(i64::from(i)),
        (Avro::Long(i), DataType::BigInt) => Value::BigInt(i),
        (Avro::Float(f), DataType::Float) => Value::Float(f),
        (Avro::Float(f), DataType::Double) => Value::Double(f64::from(f)),
        (Avro::Double(d), DataType::Double) => Value::Double(d),
        (Avro::String(s) | Avro::Enum(_, s), DataType::String) => Value::String(s),
        (Avro::Uuid(u), DataType::String) => Value::String(u.to_string()),
        (Avro::Bytes(b) | Avro::Fixed(_, b), DataType::Bytes) => Value::Bytes(b),
        (
            Avro::TimestampMillis(ms) | Avro::LocalTimestampMillis(ms) | Avro::Long(ms),
            DataType::Timestamp,
        ) => Value::Timestamp(ms),
        (Avro::TimestampMicros(us) | Avro::LocalTimestampMicros(us), DataType::Timestamp) => {
            Value::Timestamp(us.div_euclid(1000))
        }
        (Avro::Date(d) | Avro::Int(d), DataType::Date) => Value::Date(d),
        (Avro::TimeMillis(ms) | Avro::Int(ms), DataType::Time(p)) => {
            Value::Time(crate::types::truncate_time(ms, p), p)
        }
        (Avro::TimeMicros(us), DataType::Time(p)) => {
            Value::Time(crate::types::truncate_time((us / 1000) as i32, p), p)
        }
        (Avro::Decimal(d), DataType::Decimal(p, s)) => {
            let bytes: Vec<u8> = Vec::<u8>::try_from(&d).map_err(|e| e.to_string())?;
            read_decimal(&bytes, p, s)?
        }
        (Avro::Bytes(b) | Avro::Fixed(_, b), DataType::Decimal(p, s)) => read_decimal(&b, p, s)?,
        (v, _) => return Err(bad(&v)),
    })
}

/// The unscaled two's complement bytes of a DECIMAL(p, s) (NULL when wider than p digits, as
/// Flink's `DecimalData.fromUnscaledBytes`).
fn read_decimal(bytes: &[u8], p: u8, s: u8) -> Result<Value, String> {
    let unscaled = BigInt::from_signed_bytes_be(bytes);
    Ok(crate::decimal::fit(&unscaled, i64::from(s), p, s).map_or(Value::Null, Value::Decimal))
}
