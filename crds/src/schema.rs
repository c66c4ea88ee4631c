//! Hand-written schema fragments for fields whose Rust type does not say enough.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Schema of a free-form object kept as the user wrote it (pod template overrides, the last
/// reconciled spec). The API server keeps unknown fields inside it instead of pruning them; the
/// operator checks the content itself.
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
