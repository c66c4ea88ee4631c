//! Kubernetes Events on StreamJobs (`events.k8s.io/v1`): one Event object per occurrence, with a
//! bounded note.
//!
//! kube-runtime's `Recorder` folds repeats of a reason into the first Event and keeps its note,
//! so a second upgrade showed the first upgrade's savepoint path. Here every distinct message is
//! its own Event (named `<object>.<unique hex>`, as client-go names them); only the *same*
//! reason and note on the same object within [`REPEAT_WINDOW`] is published once (a pass every
//! two seconds repeating one warning would flood the API server). Notes are made to fit the
//! API's 1 kB limit: storage servers' XML error bodies are reduced to their code and message,
//! whitespace is collapsed, and the rest is truncated.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

/// Longest note the API server accepts (bytes).
pub const MAX_NOTE_BYTES: usize = 1024;
/// The same reason and note on the same object is published once per this window.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(600);
/// Bound on the remembered (object, reason, note) entries.
const MAX_REMEMBERED: usize = 8192;

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something expected happened.
    Normal,
    /// Something needs attention.
    Warning,
}

/// Publishes Events for one controller instance.
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    recent: RepeatFilter,
    sequence: std::sync::atomic::AtomicU64,
}

impl Publisher {
    /// A publisher reporting as `controller` from `instance` (the pod name).
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Self {
            client,
            controller: controller.into(),
            instance: instance.into(),
            recent: RepeatFilter::default(),
            sequence: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// [`Publisher::publish`] of a reconcile pass's Event (action `Reconcile`, a Warning or a
    /// Normal one); a refusal is logged, not returned: a lost Event never fails a pass.
    pub async fn publish_reconcile(
        &self,
        regarding: &ObjectReference,
        warning: bool,
        reason: &str,
        note: &str,
    ) {
        let kind = if warning { Kind::Warning } else { Kind::Normal };
        if let Err(e) = self
            .publish(regarding, kind, reason, "Reconcile", note)
            .await
        {
            tracing::warn!(error = %e, reason, "could not publish an Event");
        }
    }

    /// Publish an Event about `regarding` unless the same reason and note was published about
    /// it within [`REPEAT_WINDOW`]. Returns whether an Event was created.
    ///
    /// # Errors
    /// The API server refused the Event.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        kind: Kind,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Result<bool, kube::Error> {
        let note = bounded_note(note, MAX_NOTE_BYTES);
        let key = (
            regarding.uid.clone().unwrap_or_default(),
            reason.to_string(),
            note.clone(),
        );
        if !self.recent.admit(key.clone(), Instant::now()) {
            return Ok(false);
        }
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let now = Timestamp::now();
        let seq = self
            .sequence
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "{}.{:x}",
            regarding.name.clone().unwrap_or_default(),
            (now.as_nanosecond() as u128).wrapping_add(u128::from(seq))
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(action.into()),
            reason: Some(reason.into()),
            note: Some(note),
            type_: Some(
                match kind {
                    Kind::Normal => "Normal",
                    Kind::Warning => "Warning",
                }
                .into(),
            ),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => Ok(true),
            Err(e) => {
                // Not published: let a later pass try again.
                self.recent.remove(&key);
                Err(e)
            }
        }
    }

    /// Forget what was published about an object (it was deleted).
    pub fn forget(&self, uid: &str) {
        self.recent.forget(uid);
    }
}

type Key = (String, String, String);

/// Remembers (object UID, reason, note) triples published recently, bounded in size.
#[derive(Debug, Default)]
pub struct RepeatFilter {
    recent: Mutex<HashMap<Key, Instant>>,
}

impl RepeatFilter {
    /// Whether `key` was not admitted within [`REPEAT_WINDOW`] before `now`; admits it.
    pub fn admit(&self, key: Key, now: Instant) -> bool {
        let mut recent = self.recent.lock().expect("not poisoned");
        if let Some(at) = recent.get(&key)
            && now.saturating_duration_since(*at) < REPEAT_WINDOW
        {
            return false;
        }
        if recent.len() >= MAX_REMEMBERED {
            recent.retain(|_, at| now.saturating_duration_since(*at) < REPEAT_WINDOW);
            if recent.len() >= MAX_REMEMBERED {
                recent.clear();
            }
        }
        recent.insert(key, now);
        true
    }

    fn remove(&self, key: &Key) {
        self.recent.lock().expect("not poisoned").remove(key);
    }

    /// Forget every entry of one object.
    pub fn forget(&self, uid: &str) {
        self.recent
            .lock()
            .expect("not poisoned")
            .retain(|(u, _, _), _| u != uid);
    }
}

/// A note that fits `max` bytes: XML error bodies (as S3 servers send them) reduced to their
/// `Code` and `Message`, whitespace runs collapsed to one space, and anything beyond `max` cut
/// at a character boundary with `…` at the end.
pub fn bounded_note(note: &str, max: usize) -> String {
    let cleaned = collapse_whitespace(&strip_xml(note));
    truncate(&cleaned, max)
}

/// Replace every XML document or element soup in `text` by `[Code: Message]` taken from it (or
/// `[XML body omitted]`).
fn strip_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_xml_start(rest) {
        out.push_str(&rest[..start]);
        let xml = &rest[start..];
        // The XML runs to the last '>' before plain text resumes on the same chunk; take the
        // whole remainder up to the last closing tag.
        let end = xml.rfind('>').map(|i| i + 1).unwrap_or(xml.len());
        let body = &xml[..end];
        let code = element(body, "Code");
        let message = element(body, "Message");
        match (code, message) {
            (Some(c), Some(m)) => out.push_str(&format!("[{c}: {m}]")),
            (Some(c), None) => out.push_str(&format!("[{c}]")),
            (None, Some(m)) => out.push_str(&format!("[{m}]")),
            (None, None) => out.push_str("[XML body omitted]"),
        }
        rest = &xml[end..];
    }
    out.push_str(rest);
    out
}

fn find_xml_start(text: &str) -> Option<usize> {
    ["<?xml", "<Error>", "<Error "]
        .iter()
        .filter_map(|p| text.find(p))
        .min()
}

fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(xml[start..start + len].trim())
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    const ELLIPSIS: &str = "…";
    let mut cut = max.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_bodies_become_code_and_message() {
        let note = "upgrade failed: storage error: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>fjord</BucketName><RequestId>17A</RequestId></Error> (retry later)";
        assert_eq!(
            bounded_note(note, MAX_NOTE_BYTES),
            "upgrade failed: storage error: [NoSuchBucket: The specified bucket does not exist] (retry later)"
        );
        assert_eq!(
            bounded_note("x <Error><Foo/></Error>", 100),
            "x [XML body omitted]"
        );
    }

    #[test]
    fn the_same_note_is_admitted_once_per_window_and_a_different_one_at_once() {
        let f = RepeatFilter::default();
        let t0 = Instant::now();
        let key = |note: &str| {
            (
                "uid".to_string(),
                "UpgradeStarted".to_string(),
                note.to_string(),
            )
        };
        assert!(f.admit(key("savepoint sp-1"), t0));
        assert!(!f.admit(key("savepoint sp-1"), t0 + Duration::from_secs(5)));
        assert!(f.admit(key("savepoint sp-2"), t0 + Duration::from_secs(6)));
        assert!(f.admit(
            key("savepoint sp-1"),
            t0 + REPEAT_WINDOW + Duration::from_secs(1)
        ));
        f.forget("uid");
        assert!(f.admit(key("savepoint sp-2"), t0 + Duration::from_secs(7)));
    }

    #[test]
    fn long_notes_are_cut_at_a_character_boundary() {
        let note = "é".repeat(2000);
        let out = bounded_note(&note, MAX_NOTE_BYTES);
        assert!(out.len() <= MAX_NOTE_BYTES, "{}", out.len());
        assert!(out.ends_with('…'));
        assert_eq!(
            bounded_note("short  note\n\twith   spaces", 100),
            "short note with spaces"
        );
    }
}
