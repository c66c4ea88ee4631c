//! The bulk request being filled (encoded actions and their size) and the parsing of a bulk
//! response into what happened to each action.

use crate::action::DocAction;
use serde::Deserialize;
use std::collections::HashMap;

/// One encoded action waiting to be sent.
pub(crate) struct Pending {
    /// The action's lines of a bulk body.
    pub(crate) lines: Vec<u8>,
    /// `action`, `index`, `id` for messages.
    pub(crate) action: &'static str,
    pub(crate) index: String,
    pub(crate) id: Option<String>,
    /// The record the action came from is counted written once its last action succeeds;
    /// this action closes a record.
    pub(crate) last_of_record: bool,
    /// Times this action was sent and rejected for load.
    pub(crate) retries: u32,
}

impl Pending {
    pub(crate) fn new(action: &DocAction, last_of_record: bool) -> Pending {
        let mut lines = Vec::with_capacity(64 + action.source.as_ref().map_or(0, String::len));
        action.encode(&mut lines);
        Pending {
            lines,
            action: action.kind.bulk_name(),
            index: action.index.clone(),
            id: action.id.clone(),
            last_of_record,
            retries: 0,
        }
    }

    pub(crate) fn id_text(&self) -> String {
        self.id.clone().unwrap_or_else(|| "(auto)".into())
    }
}

/// The body of a bulk request made of `items`.
pub(crate) fn body(items: &[Pending]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.iter().map(|p| p.lines.len()).sum());
    for p in items {
        out.extend_from_slice(&p.lines);
    }
    out
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Vec<HashMap<String, ItemResponse>>,
}

#[derive(Deserialize)]
struct ItemResponse {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// What happened to one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done (a delete of a missing document too).
    Ok,
    /// Refused: its status, error type and reason.
    Failed {
        status: u16,
        kind: String,
        reason: String,
    },
}

/// The outcome of each of `count` actions from a bulk response body.
///
/// # Errors
/// A body that is not a bulk response for `count` actions.
pub(crate) fn outcomes(body: &[u8], count: usize) -> Result<Vec<Outcome>, String> {
    let r: Response = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the response is not a bulk response ({e}): {}",
            excerpt(body)
        )
    })?;
    if r.items.len() != count {
        return Err(format!(
            "the bulk response has {} items for {count} actions",
            r.items.len()
        ));
    }
    if !r.errors {
        return Ok(vec![Outcome::Ok; count]);
    }
    Ok(r.items
        .into_iter()
        .map(|m| {
            let Some(item) = m.into_values().next() else {
                return Outcome::Failed {
                    status: 0,
                    kind: "empty_item".into(),
                    reason: "the response item is empty".into(),
                };
            };
            match item.error {
                None => Outcome::Ok,
                Some(e) => {
                    let (kind, reason) = describe(&e);
                    Outcome::Failed {
                        status: item.status,
                        kind,
                        reason,
                    }
                }
            }
        })
        .collect())
}

/// An error object's type and its reason with its causes.
fn describe(e: &serde_json::Value) -> (String, String) {
    let kind = e["type"].as_str().unwrap_or("unknown").to_string();
    let mut reason = e["reason"]
        .as_str()
        .map_or_else(|| e.to_string(), str::to_string);
    let mut cause = &e["caused_by"];
    let mut depth = 0;
    while cause.is_object() && depth < 4 {
        reason.push_str(&format!(
            " (caused by {}: {})",
            cause["type"].as_str().unwrap_or("unknown"),
            cause["reason"].as_str().unwrap_or("")
        ));
        cause = &cause["caused_by"];
        depth += 1;
    }
    (kind, reason)
}

/// The start of a response body, for messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_give_each_items_outcome() {
        let ok = br#"{"took":3,"errors":false,"items":[{"index":{"status":201}},{"delete":{"status":404,"result":"not_found"}}]}"#;
        assert_eq!(outcomes(ok, 2).unwrap(), vec![Outcome::Ok, Outcome::Ok]);
        assert!(outcomes(ok, 3).unwrap_err().contains("2 items for 3"));
        let mixed = br#"{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n]","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"abc\""}}}},{"update":{"status":429,"error":{"type":"rejected_execution_exception","reason":"queue full"}}}]}"#;
        let got = outcomes(mixed, 3).unwrap();
        assert_eq!(got[0], Outcome::Ok);
        assert_eq!(
            got[1],
            Outcome::Failed {
                status: 400,
                kind: "mapper_parsing_exception".into(),
                reason: "failed to parse field [n] (caused by illegal_argument_exception: For input string: \"abc\")".into()
            }
        );
        assert!(matches!(got[2], Outcome::Failed { status: 429, .. }));
        assert!(
            outcomes(b"<html>busy</html>", 1)
                .unwrap_err()
                .contains("<html>busy")
        );
    }
}
