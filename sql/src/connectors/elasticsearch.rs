//! The `elasticsearch-7`, `elasticsearch-8`, `opensearch` and `opensearch-2` connectors: a sink
//! table whose rows become documents through Fjord's `ElasticsearchSink` (crate
//! `fjord-elasticsearch`, Flink's Elasticsearch sink semantics), with Flink's SQL options:
//! `hosts` (`;`-separated), `index` (static, or `{column}` parts filled from the row),
//! `document-id.key-delimiter`, `sink.bulk-flush.max-actions` / `.max-size` / `.interval`,
//! `sink.bulk-flush.backoff.strategy` / `.max-retries` / `.delay`, `failure-handler`,
//! `username` / `password`, `connection.path-prefix`, `connection.ca-file`,
//! `connection.timeout`, `socket.timeout`, `format` (`json`), `sink.delivery-guarantee`
//! (`at-least-once`). A table with `PRIMARY KEY (...) NOT ENFORCED` upserts each row under the
//! key columns' values joined by the delimiter (replays are idempotent), one without indexes
//! rows with ids the cluster chooses, as in Flink.

use crate::plan::TableDef;
use crate::types::{Row, Schema, Value};
use fjord_elasticsearch::{
    ActionKind, Backoff, BackoffStrategy, DocAction, ElasticsearchSink, Emitter, FailureHandler,
};
use std::path::PathBuf;
use std::time::Duration;

/// The connector names this module serves.
pub const CONNECTORS: &[&str] = &[
    "elasticsearch-7",
    "elasticsearch-8",
    "opensearch",
    "opensearch-2",
];

const OPTIONS: &[&str] = &[
    "hosts",
    "index",
    "document-id.key-delimiter",
    "sink.bulk-flush.max-actions",
    "sink.bulk-flush.max-size",
    "sink.bulk-flush.interval",
    "sink.bulk-flush.backoff.strategy",
    "sink.bulk-flush.backoff.max-retries",
    "sink.bulk-flush.backoff.delay",
    "sink.delivery-guarantee",
    "failure-handler",
    "username",
    "password",
    "connection.path-prefix",
    "connection.ca-file",
    "connection.timeout",
    "socket.timeout",
    "format",
];

/// One part of an index name pattern.
#[derive(Debug, Clone, PartialEq)]
enum IndexPart {
    Text(String),
    /// The row's value of this physical column.
    Column(usize),
}

/// The options of an Elasticsearch/OpenSearch table.
#[derive(Debug, Clone, PartialEq)]
pub struct ElasticsearchTableConfig {
    /// `hosts`, each with `connection.path-prefix` appended.
    pub hosts: Vec<String>,
    index: Vec<IndexPart>,
    /// Physical columns of the primary key, in key order.
    key: Vec<usize>,
    delimiter: String,
    schema: Schema,
    max_actions: Option<usize>,
    max_size: Option<usize>,
    interval: Option<Option<Duration>>,
    backoff: Backoff,
    failure_handler: FailureHandler,
    username: Option<String>,
    password: Option<String>,
    ca_file: Option<PathBuf>,
    connect_timeout: Option<Duration>,
    socket_timeout: Option<Duration>,
}

fn duration(
    o: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> Result<Option<Duration>, String> {
    o.get(key)
        .map(|v| {
            crate::planner::parse_duration(v).ok_or_else(|| {
                format!("'{key}' = '{v}' is not a duration; write e.g. '1s', '500ms', '2min'")
            })
        })
        .transpose()
}

fn count(
    o: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> Result<Option<usize>, String> {
    o.get(key)
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("'{key}' = '{v}' must be a whole number (0 disables it)"))
        })
        .transpose()
}

/// A memory size as Flink writes it: `2mb`, `512kb`, `100b`, `1 gb`; a bare number is bytes.
pub(super) fn memory_size(text: &str) -> Option<usize> {
    let t = text.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: usize = t[..digits].parse().ok()?;
    let unit = match t[digits..].trim() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kibibytes" => 1 << 10,
        "m" | "mb" | "mebibytes" => 1 << 20,
        "g" | "gb" | "gibibytes" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(unit)
}

impl ElasticsearchTableConfig {
    /// Reads and checks the options, the schema and the primary key.
    ///
    /// # Errors
    /// An unknown option, a missing `hosts` or `index`, a bad host, size, duration or
    /// strategy, an index pattern naming no column, a format other than `json`.
    pub fn from_table(table: &TableDef) -> Result<Self, String> {
        let o = &table.options;
        super::only_options(o, OPTIONS)?;
        match o.get("format").map(|f| f.trim()) {
            None | Some("json") => {}
            Some(f) => {
                return Err(format!(
                    "format '{f}' is not supported by this connector; documents are JSON: 'format' = 'json'"
                ));
            }
        }
        match o.get("sink.delivery-guarantee").map(|f| f.trim()) {
            None | Some("at-least-once") => {}
            Some(g) => {
                return Err(format!(
                    "'sink.delivery-guarantee' = '{g}' is not supported; the sink is 'at-least-once' (with a PRIMARY KEY, replays rewrite the same documents)"
                ));
            }
        }
        let prefix = o
            .get("connection.path-prefix")
            .map(|p| format!("/{}", p.trim().trim_matches('/')))
            .filter(|p| p != "/")
            .unwrap_or_default();
        let hosts: Vec<String> = o
            .get("hosts")
            .map(|h| {
                h.split(';')
                    .map(|h| h.trim().trim_end_matches('/'))
                    .filter(|h| !h.is_empty())
                    .map(|h| format!("{h}{prefix}"))
                    .collect()
            })
            .unwrap_or_default();
        if hosts.is_empty() {
            return Err("set 'hosts' to the cluster's REST endpoints, such as 'http://localhost:9200' (several separated by ';')".into());
        }
        for h in &hosts {
            fjord_elasticsearch::sink::check_host(h)?;
        }
        let schema = table.schema.clone();
        let index = o
            .get("index")
            .filter(|i| !i.trim().is_empty())
            .ok_or("set 'index' to the index to write, such as 'orders' or 'orders-{region}' (a column's value)")?;
        let index = parse_index(index.trim(), &schema)?;
        let key = table
            .primary_key
            .iter()
            .map(|c| {
                schema
                    .index_of(c)
                    .ok_or_else(|| format!("PRIMARY KEY column '{c}' is not a physical column"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let strategy = match o
            .get("sink.bulk-flush.backoff.strategy")
            .map(|s| s.trim().to_ascii_uppercase())
            .as_deref()
        {
            None => None,
            Some("DISABLED") => Some(BackoffStrategy::Disabled),
            Some("CONSTANT") => Some(BackoffStrategy::Constant),
            Some("EXPONENTIAL") => Some(BackoffStrategy::Exponential),
            Some(s) => {
                return Err(format!(
                    "'sink.bulk-flush.backoff.strategy' = '{s}' must be DISABLED, CONSTANT or EXPONENTIAL"
                ));
            }
        };
        let mut backoff = Backoff::default();
        if let Some(s) = strategy {
            backoff.strategy = s;
        }
        if let Some(n) = count(o, "sink.bulk-flush.backoff.max-retries")? {
            backoff.max_retries = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(d) = duration(o, "sink.bulk-flush.backoff.delay")? {
            backoff.delay = d;
        }
        if backoff.strategy == BackoffStrategy::Disabled {
            backoff = Backoff::disabled();
        }
        let max_size = match o.get("sink.bulk-flush.max-size") {
            None => None,
            Some(v) => Some(memory_size(v).ok_or_else(|| {
                format!("'sink.bulk-flush.max-size' = '{v}' is not a size; write e.g. '2mb', '512kb' (0 disables it)")
            })?),
        };
        let username = o.get("username").cloned().filter(|u| !u.is_empty());
        let password = o.get("password").cloned();
        if password.is_some() && username.is_none() {
            return Err("'password' needs 'username'".into());
        }
        let config = ElasticsearchTableConfig {
            hosts,
            index,
            key,
            delimiter: o
                .get("document-id.key-delimiter")
                .cloned()
                .unwrap_or_else(|| "_".into()),
            schema,
            max_actions: count(o, "sink.bulk-flush.max-actions")?,
            max_size,
            interval: duration(o, "sink.bulk-flush.interval")?.map(|d| (!d.is_zero()).then_some(d)),
            backoff,
            failure_handler: o
                .get("failure-handler")
                .map(|h| FailureHandler::parse(h))
                .transpose()?
                .unwrap_or_default(),
            username,
            password,
            ca_file: o.get("connection.ca-file").map(PathBuf::from),
            connect_timeout: duration(o, "connection.timeout")?,
            socket_timeout: duration(o, "socket.timeout")?,
        };
        Ok(config)
    }

    /// The sink.
    ///
    /// # Errors
    /// What the sink's builder refuses (not expected after [`from_table`](Self::from_table)).
    pub fn sink(&self) -> Result<ElasticsearchSink<Row>, String> {
        let mut b = ElasticsearchSink::builder()
            .hosts(self.hosts.clone())
            .emitter(RowEmitter {
                index: self.index.clone(),
                key: self.key.clone(),
                delimiter: self.delimiter.clone(),
                schema: self.schema.clone(),
            })
            .backoff(self.backoff)
            .failure_handler(self.failure_handler);
        if let Some(n) = self.max_actions {
            b = b.max_actions(n);
        }
        if let Some(n) = self.max_size {
            b = b.max_size_bytes(n);
        }
        if let Some(i) = self.interval {
            b = b.flush_interval(i);
        }
        if let Some(u) = &self.username {
            b = b.basic_auth(u, self.password.clone().unwrap_or_default());
        }
        if let Some(ca) = &self.ca_file {
            b = b.ca_file(ca);
        }
        if let Some(d) = self.connect_timeout {
            b = b.connect_timeout(d);
        }
        if let Some(d) = self.socket_timeout {
            b = b.request_timeout(d);
        }
        b.build().map_err(|e| e.to_string())
    }
}

/// `orders-{region}-x` as text and column parts.
fn parse_index(pattern: &str, schema: &Schema) -> Result<Vec<IndexPart>, String> {
    let mut parts = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(IndexPart::Text(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| format!("'index' = '{pattern}' has a '{{' without '}}'"))?;
        let column = rest[open + 1..close].trim();
        if column.contains('|') {
            return Err(format!(
                "'index' = '{pattern}': date formats in index patterns ('{{{column}}}') are not supported yet; compute the text in a column and name it"
            ));
        }
        let i = schema.index_of(column).ok_or_else(|| {
            format!("'index' = '{pattern}' names '{column}', which is not a column of the table")
        })?;
        parts.push(IndexPart::Column(i));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(IndexPart::Text(rest.to_string()));
    }
    Ok(parts)
}

/// Rows to documents: the row as a JSON object (Flink's JSON format), the index from the
/// pattern, the id from the key columns.
struct RowEmitter {
    index: Vec<IndexPart>,
    key: Vec<usize>,
    delimiter: String,
    schema: Schema,
}

fn text(v: &Value) -> Option<String> {
    (!v.is_null()).then(|| v.to_sql_string()).flatten()
}

impl Emitter<Row> for RowEmitter {
    fn emit(&self, row: &Row) -> Result<Vec<DocAction>, String> {
        let mut index = String::new();
        for p in &self.index {
            match p {
                IndexPart::Text(t) => index.push_str(t),
                IndexPart::Column(i) => index.push_str(&text(&row[*i]).ok_or_else(|| {
                    format!(
                        "the index name needs column '{}', which is NULL in {row:?}",
                        self.schema.columns[*i].name
                    )
                })?),
            }
        }
        let id = if self.key.is_empty() {
            None
        } else {
            let mut parts = Vec::with_capacity(self.key.len());
            for &i in &self.key {
                parts.push(text(&row[i]).ok_or_else(|| {
                    format!(
                        "PRIMARY KEY column '{}' is NULL in {row:?}; a document id needs every key column",
                        self.schema.columns[i].name
                    )
                })?);
            }
            Some(parts.join(&self.delimiter))
        };
        let json = super::format::encode(&super::format::Format::Json, &self.schema, row)
            .map_err(|e| e.to_string())?;
        let json = String::from_utf8(json).map_err(|e| e.to_string())?;
        let kind = if id.is_some() {
            ActionKind::Upsert
        } else {
            ActionKind::Index
        };
        Ok(vec![DocAction::raw(kind, index, id, json)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Column, DataType};
    use std::collections::BTreeMap;

    fn table(options: &[(&str, &str)], key: &[&str]) -> TableDef {
        let schema = Schema {
            columns: ["id", "region", "n"]
                .iter()
                .zip([DataType::BigInt, DataType::String, DataType::Int])
                .map(|(n, t)| Column {
                    name: n.to_string(),
                    data_type: t,
                    rowtime: false,
                })
                .collect(),
        };
        let mut o: BTreeMap<String, String> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        o.insert("connector".into(), "opensearch".into());
        let mut t = TableDef::physical("t", schema, o);
        t.primary_key = key.iter().map(|k| k.to_string()).collect();
        t
    }

    #[test]
    fn rows_become_upserts_with_ids_from_the_key_and_index_from_columns() {
        let t = table(
            &[
                ("hosts", "http://a:9200;http://b:9200"),
                ("index", "o-{region}"),
                ("document-id.key-delimiter", "$"),
                ("connection.path-prefix", "/es/"),
            ],
            &["region", "id"],
        );
        let c = ElasticsearchTableConfig::from_table(&t).unwrap();
        assert_eq!(c.hosts, ["http://a:9200/es", "http://b:9200/es"]);
        let e = RowEmitter {
            index: c.index.clone(),
            key: c.key.clone(),
            delimiter: c.delimiter.clone(),
            schema: c.schema.clone(),
        };
        let row = vec![Value::BigInt(7), Value::String("eu".into()), Value::Int(3)];
        let a = &e.emit(&row).unwrap()[0];
        assert_eq!(a.index_name(), "o-eu");
        assert_eq!(a.id(), Some("eu$7"));
        assert_eq!(a.kind(), ActionKind::Upsert);
        let null_key = vec![Value::BigInt(7), Value::Null, Value::Int(3)];
        assert!(e.emit(&null_key).unwrap_err().contains("'region'"));
    }

    #[test]
    fn bad_options_are_named() {
        let err =
            |o: &[(&str, &str)]| ElasticsearchTableConfig::from_table(&table(o, &[])).unwrap_err();
        assert!(err(&[("index", "x")]).contains("set 'hosts'"));
        assert!(err(&[("hosts", "http://a:1")]).contains("set 'index'"));
        assert!(err(&[("hosts", "a:1"), ("index", "x")]).contains("http://"));
        assert!(err(&[("hosts", "http://a:1"), ("index", "x-{nope}")]).contains("'nope'"));
        assert!(
            err(&[
                ("hosts", "http://a:1"),
                ("index", "x"),
                ("sink.bulk-flush.max-size", "2 parsecs")
            ])
            .contains("not a size")
        );
        assert!(
            err(&[("hosts", "http://a:1"), ("index", "x"), ("format", "csv")]).contains("'json'")
        );
        assert!(
            err(&[
                ("hosts", "http://a:1"),
                ("index", "x"),
                ("failure-handler", "shrug")
            ])
            .contains("'drop'")
        );
        assert_eq!(memory_size("2mb"), Some(2 << 20));
        assert_eq!(memory_size("512 kb"), Some(512 << 10));
        assert_eq!(memory_size("100"), Some(100));
    }
}
