//! Finalizers added and removed with JSON patches that test the list first.
//!
//! A merge patch of `metadata.finalizers` replaces the whole list with the one the operator
//! read, so a finalizer another controller added or removed in between would be undone. The
//! patches here carry a `test` operation: adding tests the whole list as read (or its absence),
//! removing tests that the entry is still at the index it was read at. When the object changed
//! in between, the API server refuses the patch (422) and the reconcile retries on the fresh
//! object, as kube-runtime's own finalizer helper does.

use crate::error::Error;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::fmt::Debug;

/// The JSON patch that appends `name` to `current` (the list as read); `None` when it is
/// already there.
pub fn add_patch(current: &[String], name: &str) -> Option<Value> {
    if current.iter().any(|f| f == name) {
        return None;
    }
    Some(if current.is_empty() {
        // Absent or empty: a missing list reads as null in the test.
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [name]},
        ])
    } else {
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": name},
        ])
    })
}

/// The JSON patch that removes `name` from `current` (the list as read); `None` when it is not
/// there.
pub fn remove_patch(current: &[String], name: &str) -> Option<Value> {
    let index = current.iter().position(|f| f == name)?;
    let path = format!("/metadata/finalizers/{index}");
    Some(json!([
        {"op": "test", "path": path, "value": name},
        {"op": "remove", "path": path},
    ]))
}

/// Adds (`present`) or removes the finalizer `name` of `obj`, if needed.
pub async fn set<K>(api: &Api<K>, obj: &K, name: &str, present: bool) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let (patch, action) = if present {
        (add_patch(obj.finalizers(), name), "adding the finalizer")
    } else {
        (
            remove_patch(obj.finalizers(), name),
            "removing the finalizer",
        )
    };
    let Some(patch) = patch else {
        return Ok(());
    };
    let patch = serde_json::from_value(patch).map_err(|source| Error::Serde {
        what: "a finalizer patch".into(),
        source,
    })?;
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::<()>::Json(patch),
    )
    .await
    .map_err(Error::kube(action))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn adding_tests_the_list_as_read() {
        assert_eq!(
            add_patch(&[], "f"),
            Some(json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["f"]},
            ]))
        );
        assert_eq!(
            add_patch(&list(&["other"]), "f"),
            Some(json!([
                {"op": "test", "path": "/metadata/finalizers", "value": ["other"]},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "f"},
            ]))
        );
        assert_eq!(add_patch(&list(&["other", "f"]), "f"), None);
    }

    #[test]
    fn removing_tests_the_entry_at_its_index() {
        assert_eq!(
            remove_patch(&list(&["a", "f", "b"]), "f"),
            Some(json!([
                {"op": "test", "path": "/metadata/finalizers/1", "value": "f"},
                {"op": "remove", "path": "/metadata/finalizers/1"},
            ]))
        );
        assert_eq!(remove_patch(&list(&["a"]), "f"), None);
    }

    #[test]
    fn patches_are_valid_json_patches() {
        for p in [
            add_patch(&[], "f"),
            add_patch(&list(&["a"]), "f"),
            remove_patch(&list(&["f"]), "f"),
        ] {
            let parsed: Result<Patch<()>, _> = serde_json::from_value(p.unwrap()).map(Patch::Json);
            assert!(parsed.is_ok());
        }
    }
}
