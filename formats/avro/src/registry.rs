//! A small blocking client of the Confluent schema-registry REST API (the API of Confluent
//! Schema Registry, which Apicurio Registry's `/apis/ccompat/v7` and Karapace also speak):
//! register a schema under a subject, look up the id of a schema, fetch a schema by id.
//!
//! Ids and schemas are cached for the life of the client, as Confluent's
//! `CachedSchemaRegistryClient` does: a schema id never changes meaning within a registry, so
//! after the first record of a schema no request is made. HTTP runs on a single-threaded tokio
//! runtime of the client's own, driven from the calling (synchronous) thread: call it from a
//! task thread, not from inside an async runtime.

use crate::error::AvroError;
use apache_avro::Schema;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The subject of a topic's keys or values by Confluent's default `TopicNameStrategy`:
/// `<topic>-key` / `<topic>-value` (what Flink's `avro-confluent` format registers under when
/// `avro-confluent.subject` is not set on a Kafka table).
pub fn topic_subject(topic: &str, is_key: bool) -> String {
    format!("{topic}-{}", if is_key { "key" } else { "value" })
}

/// The content type of the registry's API.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A client of one schema registry; share it (`Arc`) between the formats of a process.
pub struct SchemaRegistryClient {
    url: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    basic_auth: Option<(String, String)>,
    bearer: Option<String>,
    /// (subject, schema JSON) → id.
    ids: Mutex<HashMap<(String, String), u32>>,
    /// id → writer schema.
    schemas: Mutex<HashMap<u32, Arc<Schema>>>,
}

impl std::fmt::Debug for SchemaRegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistryClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The JSON text of a schema as the registry stores it (with logical types, unlike the
/// parsing canonical form).
pub fn schema_json(schema: &Schema) -> String {
    serde_json::to_string(schema).unwrap_or_else(|_| schema.canonical_form())
}

impl SchemaRegistryClient {
    /// A client of the registry at `url` (`http://host:8081`, or a path prefix such as
    /// Apicurio's `http://host:8080/apis/ccompat/v7`). Does not connect.
    ///
    /// # Errors
    /// [`AvroError::Registry`] for a URL that is not http(s) or a client that cannot start.
    pub fn new(url: &str) -> Result<Self, AvroError> {
        let url = url.trim().trim_end_matches('/').to_string();
        let err = |message: String| AvroError::Registry {
            url: url.clone(),
            message,
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(err(
                "the URL must start with http:// or https://, such as 'http://localhost:8081'"
                    .into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| err(format!("cannot start the HTTP client's runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| err(format!("cannot build the HTTP client: {e}")))?;
        Ok(SchemaRegistryClient {
            url,
            http,
            runtime,
            basic_auth: None,
            bearer: None,
            ids: Mutex::new(HashMap::new()),
            schemas: Mutex::new(HashMap::new()),
        })
    }

    /// Authenticates with HTTP basic auth (Confluent's `basic.auth.user.info`, `user:password`).
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }

    /// Authenticates with a bearer token.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// The registry's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Registers `schema` under `subject` (a new version, or the existing one when the subject
    /// has it already) and returns its id. Cached per (subject, schema).
    ///
    /// # Errors
    /// [`AvroError::Registry`]: the registry cannot be reached, or refuses the schema (invalid,
    /// or incompatible with the subject's earlier versions under its compatibility rule).
    pub fn register(&self, subject: &str, schema: &Schema) -> Result<u32, AvroError> {
        let json = schema_json(schema);
        let key = (subject.to_string(), json.clone());
        if let Some(id) = self.ids.lock().get(&key) {
            return Ok(*id);
        }
        let body = serde_json::json!({ "schema": json });
        let path = format!("/subjects/{}/versions", encode_path(subject));
        let (status, reply) = self.request(reqwest::Method::POST, &path, Some(body))?;
        if status != 200 {
            return Err(self.refused(
                status,
                &reply,
                &format!("registering a schema under subject '{subject}'"),
            ));
        }
        let id = id_of(&reply).ok_or_else(|| self.err(format!("no id in the answer {reply}")))?;
        self.ids.lock().insert(key, id);
        self.schemas
            .lock()
            .entry(id)
            .or_insert_with(|| Arc::new(schema.clone()));
        Ok(id)
    }

    /// The id of `schema` under `subject`, `None` when the subject does not have it.
    ///
    /// # Errors
    /// [`AvroError::Registry`] when the registry cannot be reached or answers otherwise.
    pub fn lookup(&self, subject: &str, schema: &Schema) -> Result<Option<u32>, AvroError> {
        let json = schema_json(schema);
        let key = (subject.to_string(), json.clone());
        if let Some(id) = self.ids.lock().get(&key) {
            return Ok(Some(*id));
        }
        let body = serde_json::json!({ "schema": json });
        let path = format!("/subjects/{}", encode_path(subject));
        let (status, reply) = self.request(reqwest::Method::POST, &path, Some(body))?;
        if status == 404 {
            return Ok(None);
        }
        if status != 200 {
            return Err(self.refused(
                status,
                &reply,
                &format!("looking up a schema under subject '{subject}'"),
            ));
        }
        let id = id_of(&reply).ok_or_else(|| self.err(format!("no id in the answer {reply}")))?;
        self.ids.lock().insert(key, id);
        Ok(Some(id))
    }

    /// The schema registered with `id` (a record's writer schema). Cached.
    ///
    /// # Errors
    /// [`AvroError::UnknownSchemaId`] when the registry has no such id;
    /// [`AvroError::Registry`] when it cannot be reached; [`AvroError::Schema`] when the
    /// schema it holds is not Avro.
    pub fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, AvroError> {
        if let Some(s) = self.schemas.lock().get(&id) {
            return Ok(s.clone());
        }
        let (status, reply) =
            self.request(reqwest::Method::GET, &format!("/schemas/ids/{id}"), None)?;
        if status == 404 {
            return Err(AvroError::UnknownSchemaId {
                url: self.url.clone(),
                id,
            });
        }
        if status != 200 {
            return Err(self.refused(status, &reply, &format!("fetching schema id {id}")));
        }
        if let Some(t) = reply.get("schemaType").and_then(|t| t.as_str())
            && t != "AVRO"
        {
            return Err(AvroError::Schema(format!(
                "schema id {id} in the registry at {} is a {t} schema, not Avro",
                self.url
            )));
        }
        let text = reply
            .get("schema")
            .and_then(|s| s.as_str())
            .ok_or_else(|| self.err(format!("no schema in the answer {reply}")))?;
        let schema = Arc::new(crate::datum::parse_schema(text)?);
        self.schemas.lock().insert(id, schema.clone());
        Ok(schema)
    }

    fn err(&self, message: String) -> AvroError {
        AvroError::Registry {
            url: self.url.clone(),
            message,
        }
    }

    fn refused(&self, status: u16, reply: &serde_json::Value, what: &str) -> AvroError {
        let message = reply
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| reply.to_string());
        let hint = match status {
            401 | 403 => {
                "; the registry needs credentials or refused them (set 'avro-confluent.basic-auth.user-info')"
            }
            409 => {
                "; the schema is incompatible with the subject's earlier versions under its compatibility rule: evolve it compatibly or change the subject's compatibility"
            }
            422 => "; the registry does not accept the schema",
            _ => "",
        };
        self.err(format!("{what}: HTTP {status}: {message}{hint}"))
    }

    /// Sends one request and returns the status and the JSON body (`null` when not JSON).
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), AvroError> {
        let url = format!("{}{path}", self.url);
        let mut req = self
            .http
            .request(method, &url)
            .header("accept", CONTENT_TYPE);
        if let Some(b) = body {
            req = req.header("content-type", CONTENT_TYPE).body(b.to_string());
        }
        if let Some((u, p)) = &self.basic_auth {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(t) = &self.bearer {
            req = req.bearer_auth(t);
        }
        let result = self.runtime.block_on(async move {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        });
        let (status, bytes) = result.map_err(|e| {
            self.err(format!(
                "cannot reach the registry ({}): check the URL and that the registry is running",
                error_chain(&e)
            ))
        })?;
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok((status, json))
    }
}

fn id_of(reply: &serde_json::Value) -> Option<u32> {
    reply
        .get("id")
        .and_then(serde_json::Value::as_u64)
        .and_then(|i| u32::try_from(i).ok())
}

/// An error with its causes (reqwest's own text omits "connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A subject as one URL path segment.
fn encode_path(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
