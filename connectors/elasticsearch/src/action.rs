//! What one record becomes in the cluster: [`DocAction`]s (index, upsert, delete), made by an
//! [`Emitter`] (Flink's `ElasticsearchEmitter`): a closure, or a [`JsonEmitter`] that takes the
//! index and the document id from the record's fields.

use serde::Serialize;
use serde_json::Value;

/// The kind of a bulk action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// `index`: write the whole document (replace it if the id exists).
    Index,
    /// `update` with `doc_as_upsert`: merge the fields into the document, creating it if absent
    /// (what Flink's SQL sink sends for a table with a primary key).
    Upsert,
    /// `delete` the document with the id (a missing one is not an error).
    Delete,
}

impl ActionKind {
    /// The action's name in the bulk API.
    pub fn bulk_name(self) -> &'static str {
        match self {
            ActionKind::Index => "index",
            ActionKind::Upsert => "update",
            ActionKind::Delete => "delete",
        }
    }
}

/// One action of a bulk request, its document already JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocAction {
    pub(crate) kind: ActionKind,
    pub(crate) index: String,
    pub(crate) id: Option<String>,
    /// The document (JSON object text); none for a delete.
    pub(crate) source: Option<String>,
}

impl DocAction {
    /// Writes `doc` into `index` with an id the cluster chooses: a replay after a failure
    /// writes it again under a new id, so give an id with [`with_id`](Self::with_id) for
    /// idempotent writes.
    ///
    /// # Errors
    /// A `doc` that does not serialize to a JSON object.
    pub fn index(index: impl Into<String>, doc: &impl Serialize) -> Result<DocAction, String> {
        Ok(DocAction {
            kind: ActionKind::Index,
            index: index.into(),
            id: None,
            source: Some(object_text(doc)?),
        })
    }

    /// Merges `doc` into document `id` of `index`, creating it if absent (`update` with
    /// `doc_as_upsert`). Idempotent: a replay leaves the same document.
    ///
    /// # Errors
    /// A `doc` that does not serialize to a JSON object.
    pub fn upsert(
        index: impl Into<String>,
        id: impl Into<String>,
        doc: &impl Serialize,
    ) -> Result<DocAction, String> {
        Ok(DocAction {
            kind: ActionKind::Upsert,
            index: index.into(),
            id: Some(id.into()),
            source: Some(object_text(doc)?),
        })
    }

    /// Deletes document `id` of `index`.
    pub fn delete(index: impl Into<String>, id: impl Into<String>) -> DocAction {
        DocAction {
            kind: ActionKind::Delete,
            index: index.into(),
            id: Some(id.into()),
            source: None,
        }
    }

    /// An index or upsert action whose document is JSON object text already (not checked here:
    /// the cluster refuses text that is not a JSON object, and the failure handler sees it).
    pub fn raw(
        kind: ActionKind,
        index: impl Into<String>,
        id: Option<String>,
        json: impl Into<String>,
    ) -> DocAction {
        DocAction {
            kind,
            index: index.into(),
            id,
            source: (kind != ActionKind::Delete).then(|| json.into()),
        }
    }

    /// The same action with document id `id` (an index action then replaces the document: a
    /// replay is idempotent).
    pub fn with_id(mut self, id: impl Into<String>) -> DocAction {
        self.id = Some(id.into());
        self
    }

    /// The action's kind.
    pub fn kind(&self) -> ActionKind {
        self.kind
    }

    /// The target index.
    pub fn index_name(&self) -> &str {
        &self.index
    }

    /// The document id, if any.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Checks what the cluster would refuse as a whole request rather than per item.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.index.is_empty() {
            return Err("the action has an empty index name".into());
        }
        if self.kind != ActionKind::Index && self.id.as_deref().is_none_or(str::is_empty) {
            return Err(format!(
                "a {} action needs a document id",
                self.kind.bulk_name()
            ));
        }
        if let Some(s) = &self.source
            && s.contains('\n')
        {
            // Bulk bodies are newline-delimited; serde_json never writes raw newlines, only
            // hand-made raw JSON can.
            return Err("the document's JSON text holds a raw newline".into());
        }
        Ok(())
    }

    /// The action's lines of a bulk body (each ending in `\n`).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        // Written by hand so the key order is fixed (`_index`, then `_id`).
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(self.kind.bulk_name().as_bytes());
        out.extend_from_slice(b"\":{\"_index\":");
        out.extend_from_slice(Value::from(self.index.as_str()).to_string().as_bytes());
        if let Some(id) = &self.id {
            out.extend_from_slice(b",\"_id\":");
            out.extend_from_slice(Value::from(id.as_str()).to_string().as_bytes());
        }
        out.extend_from_slice(b"}}");
        out.push(b'\n');
        match (self.kind, &self.source) {
            (ActionKind::Upsert, Some(doc)) => {
                out.extend_from_slice(b"{\"doc\":");
                out.extend_from_slice(doc.as_bytes());
                out.extend_from_slice(b",\"doc_as_upsert\":true}\n");
            }
            (_, Some(doc)) => {
                out.extend_from_slice(doc.as_bytes());
                out.push(b'\n');
            }
            (_, None) => {}
        }
    }
}

fn object_text(doc: &impl Serialize) -> Result<String, String> {
    let v = serde_json::to_value(doc).map_err(|e| format!("cannot make a JSON document: {e}"))?;
    if !v.is_object() {
        return Err(format!("a document must be a JSON object, not `{v}`"));
    }
    Ok(v.to_string())
}

/// Makes the bulk actions of a record (Flink's `ElasticsearchEmitter`): none, one or several.
/// Closures `Fn(&T) -> Result<DocAction, String>` are emitters.
pub trait Emitter<T>: Send + Sync + 'static {
    /// The actions for `record`, or why it cannot be written (a malformed record).
    fn emit(&self, record: &T) -> Result<Vec<DocAction>, String>;
}

impl<T, F> Emitter<T> for F
where
    F: Fn(&T) -> Result<DocAction, String> + Send + Sync + 'static,
{
    fn emit(&self, record: &T) -> Result<Vec<DocAction>, String> {
        self(record).map(|a| vec![a])
    }
}

/// Where a [`JsonEmitter`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexName {
    /// One index for every record.
    Static(String),
    /// The value of this top-level field of the record (a string or a number).
    Field(String),
}

/// An emitter for records that serialize to a JSON object: the document is the record, the
/// index static or from a field, the id the values of the id fields joined with a delimiter
/// (Flink's `document-id.key-delimiter`, default `_`). With id fields, records are upserted
/// (or indexed, with [`ActionKind::Index`]), without them indexed with an id the cluster chooses.
#[derive(Debug, Clone)]
pub struct JsonEmitter {
    index: IndexName,
    id_fields: Vec<String>,
    delimiter: String,
    kind: ActionKind,
}

impl JsonEmitter {
    /// Writes every record into `index`.
    pub fn new(index: impl Into<String>) -> JsonEmitter {
        JsonEmitter {
            index: IndexName::Static(index.into()),
            id_fields: Vec::new(),
            delimiter: "_".into(),
            kind: ActionKind::Upsert,
        }
    }

    /// Writes each record into the index its field `field` names.
    pub fn index_from_field(field: impl Into<String>) -> JsonEmitter {
        JsonEmitter {
            index: IndexName::Field(field.into()),
            ..JsonEmitter::new("")
        }
    }

    /// The document id: these fields' values, joined by the key delimiter.
    pub fn id_fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.id_fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// The text between the id fields' values (default `_`).
    pub fn key_delimiter(mut self, delimiter: impl Into<String>) -> Self {
        self.delimiter = delimiter.into();
        self
    }

    /// Index (replace) instead of upsert (merge) documents that have an id. A delete is not
    /// a choice here: write a closure emitter for deletes.
    pub fn replace_documents(mut self) -> Self {
        self.kind = ActionKind::Index;
        self
    }

    fn field_text(doc: &serde_json::Map<String, Value>, field: &str) -> Result<String, String> {
        match doc.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
            Some(Value::Null) | None => Err(format!("the record has no value in field '{field}'")),
            Some(v) => Err(format!(
                "field '{field}' holds `{v}`; an index name or id part must be a string or a number"
            )),
        }
    }
}

impl<T: Serialize> Emitter<T> for JsonEmitter {
    fn emit(&self, record: &T) -> Result<Vec<DocAction>, String> {
        let v = serde_json::to_value(record).map_err(|e| format!("cannot make JSON: {e}"))?;
        let Value::Object(doc) = v else {
            return Err(format!("a document must be a JSON object, not `{v}`"));
        };
        let index = match &self.index {
            IndexName::Static(i) => i.clone(),
            IndexName::Field(f) => Self::field_text(&doc, f)?,
        };
        let id = if self.id_fields.is_empty() {
            None
        } else {
            let parts = self
                .id_fields
                .iter()
                .map(|f| Self::field_text(&doc, f))
                .collect::<Result<Vec<_>, _>>()?;
            Some(parts.join(&self.delimiter))
        };
        let kind = if id.is_some() {
            self.kind
        } else {
            ActionKind::Index
        };
        Ok(vec![DocAction::raw(
            kind,
            index,
            id,
            Value::Object(doc).to_string(),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(a: &DocAction) -> String {
        let mut out = Vec::new();
        a.encode(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn actions_encode_as_bulk_lines() {
        let doc = json!({"n": 1, "s": "a\nb"});
        assert_eq!(
            body(&DocAction::index("i", &doc).unwrap()),
            "{\"index\":{\"_index\":\"i\"}}\n{\"n\":1,\"s\":\"a\\nb\"}\n"
        );
        assert_eq!(
            body(&DocAction::upsert("i", "7", &doc).unwrap()),
            "{\"update\":{\"_index\":\"i\",\"_id\":\"7\"}}\n{\"doc\":{\"n\":1,\"s\":\"a\\nb\"},\"doc_as_upsert\":true}\n"
        );
        assert_eq!(
            body(&DocAction::delete("i", "a\"b")),
            "{\"delete\":{\"_index\":\"i\",\"_id\":\"a\\\"b\"}}\n"
        );
        assert!(DocAction::index("i", &json!([1])).is_err());
        assert!(DocAction::delete("i", "").check().is_err());
        assert!(
            DocAction::raw(ActionKind::Index, "i", None, "{\n}")
                .check()
                .is_err()
        );
    }

    #[test]
    fn json_emitter_takes_index_and_id_from_fields() {
        let e = JsonEmitter::index_from_field("region").id_fields(["user", "n"]);
        let a = Emitter::emit(&e, &json!({"region": "eu", "user": "ann", "n": 3})).unwrap();
        assert_eq!(a[0].index, "eu");
        assert_eq!(a[0].id.as_deref(), Some("ann_3"));
        assert_eq!(a[0].kind, ActionKind::Upsert);
        let err = Emitter::emit(&e, &json!({"region": "eu", "n": 3})).unwrap_err();
        assert!(err.contains("'user'"), "{err}");
        let plain = JsonEmitter::new("x");
        let a = Emitter::emit(&plain, &json!({"a": 1})).unwrap();
        assert_eq!((a[0].kind, a[0].id.clone()), (ActionKind::Index, None));
        let joined = JsonEmitter::new("x")
            .id_fields(["a", "b"])
            .key_delimiter("|")
            .replace_documents();
        let a = Emitter::emit(&joined, &json!({"a": 1, "b": "z"})).unwrap();
        assert_eq!(
            (a[0].kind, a[0].id.as_deref()),
            (ActionKind::Index, Some("1|z"))
        );
    }
}
