//! Message types read at run time: from a `.proto` file compiled here (protox, no `protoc`)
//! or from a descriptor set, then messages decoded and built dynamically.

use crate::error::ProtobufError;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use std::path::{Path, PathBuf};

/// One message type: what its fields are called, numbered and typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSchema {
    descriptor: MessageDescriptor,
}

impl MessageSchema {
    /// The message type `message` (its full name, `package.Message`) of the `.proto` file at
    /// `file`. Imports resolve against the file's own directory, then `includes`; Google's
    /// well-known types (`google/protobuf/timestamp.proto`, ...) are built in.
    ///
    /// # Errors
    /// [`ProtobufError::Compile`] if the file does not compile (the message names the line),
    /// [`ProtobufError::UnknownMessage`] if it has no such message type.
    pub fn from_proto_file(
        file: &Path,
        includes: &[PathBuf],
        message: &str,
    ) -> Result<Self, ProtobufError> {
        let compile_error = |reason: String| ProtobufError::Compile {
            file: file.to_path_buf(),
            reason,
        };
        if !file.is_file() {
            return Err(compile_error(
                "no such file (the path is read where the job runs: on Kubernetes, mount it into the pods)".into(),
            ));
        }
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut all_includes = vec![dir];
        all_includes.extend(includes.iter().cloned());
        let set =
            protox::compile([file], all_includes).map_err(|e| compile_error(e.to_string()))?;
        let pool = DescriptorPool::from_file_descriptor_set(set)
            .map_err(|e| compile_error(e.to_string()))?;
        Self::find(&pool, message, &file.display().to_string())
    }

    /// The message type `message` of a binary `FileDescriptorSet` (what `protoc
    /// --include_imports --descriptor_set_out=FILE` or `buf build -o FILE` writes).
    ///
    /// # Errors
    /// [`ProtobufError::DescriptorSet`] if the bytes are not a consistent descriptor set,
    /// [`ProtobufError::UnknownMessage`] if it has no such message type.
    pub fn from_descriptor_set(bytes: &[u8], message: &str) -> Result<Self, ProtobufError> {
        let pool = DescriptorPool::decode(bytes)
            .map_err(|e| ProtobufError::DescriptorSet(e.to_string()))?;
        Self::find(&pool, message, "the descriptor set")
    }

    fn find(pool: &DescriptorPool, message: &str, source: &str) -> Result<Self, ProtobufError> {
        let name = message.trim().trim_start_matches('.');
        match pool.get_message_by_name(name) {
            Some(descriptor) => Ok(MessageSchema { descriptor }),
            None => {
                let known: Vec<String> = pool
                    .all_messages()
                    .filter(|m| !m.full_name().starts_with("google.protobuf."))
                    .map(|m| m.full_name().to_string())
                    .collect();
                Err(ProtobufError::UnknownMessage {
                    name: name.to_string(),
                    source_name: source.to_string(),
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                })
            }
        }
    }

    /// The message type's descriptor: its fields, their kinds and presence.
    pub fn descriptor(&self) -> &MessageDescriptor {
        &self.descriptor
    }

    /// Whether the message type is declared in a `proto3` file (whose plain fields have no
    /// presence: an absent field and a field set to its default are the same bytes).
    pub fn is_proto3(&self) -> bool {
        self.descriptor.parent_file().syntax() == prost_reflect::Syntax::Proto3
    }

    /// The message type's full name (`package.Message`).
    pub fn full_name(&self) -> &str {
        self.descriptor.full_name()
    }

    /// Decodes one message of this type.
    ///
    /// # Errors
    /// [`ProtobufError::Decode`] if the bytes are not one.
    pub fn decode(&self, bytes: &[u8]) -> Result<DynamicMessage, ProtobufError> {
        DynamicMessage::decode(self.descriptor.clone(), bytes).map_err(|e| ProtobufError::Decode {
            message: self.full_name().to_string(),
            reason: e.to_string(),
        })
    }

    /// An empty message of this type, to set fields on and encode
    /// (`prost::Message::encode_to_vec`).
    pub fn new_message(&self) -> DynamicMessage {
        DynamicMessage::new(self.descriptor.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use prost_reflect::Value;

    const ORDERS: &str = r#"
syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Order {
  int64 id = 1;
  string customer = 2;
  optional double amount = 3;
  Status status = 4;
  google.protobuf.Timestamp at = 5;
}
enum Status { NEW = 0; PAID = 1; }
"#;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_proto_file_compiles_and_its_messages_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "orders.proto", ORDERS);
        let schema = MessageSchema::from_proto_file(&file, &[], "shop.Order").unwrap();
        assert_eq!(schema.full_name(), "shop.Order");
        assert!(schema.is_proto3());
        let mut m = schema.new_message();
        m.set_field_by_name("id", Value::I64(42));
        m.set_field_by_name("customer", Value::String("bob".into()));
        m.set_field_by_name("status", Value::EnumNumber(1));
        let bytes = m.encode_to_vec();
        let back = schema.decode(&bytes).unwrap();
        assert_eq!(back.get_field_by_name("id").unwrap().as_i64(), Some(42));
        assert_eq!(
            back.get_field_by_name("customer").unwrap().as_str(),
            Some("bob")
        );
        // Presence: `optional` is tracked, proto3's plain fields are not.
        let amount = schema.descriptor().get_field_by_name("amount").unwrap();
        assert!(amount.supports_presence() && !back.has_field(&amount));
        let err = schema.decode(&[0x08]).unwrap_err().to_string();
        assert!(err.contains("not a valid shop.Order message"), "{err}");
    }

    #[test]
    fn errors_name_the_file_line_or_the_known_messages() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "orders.proto", ORDERS);
        let err = MessageSchema::from_proto_file(&file, &[], "shop.Ordr")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no message type 'shop.Ordr'") && err.contains("shop.Order"));
        let bad = write(
            dir.path(),
            "bad.proto",
            "syntax = \"proto3\";\nmessage X { int32 = 1; }\n",
        );
        let err = MessageSchema::from_proto_file(&bad, &[], "X")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot compile") && err.contains("bad.proto"),
            "{err}"
        );
        let missing = dir.path().join("missing.proto");
        let err = MessageSchema::from_proto_file(&missing, &[], "X")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such file"), "{err}");
        let err = MessageSchema::from_descriptor_set(b"\xff\xff", "X")
            .unwrap_err()
            .to_string();
        assert!(err.contains("descriptor set"), "{err}");
    }

    #[test]
    fn a_descriptor_set_gives_the_same_type() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "orders.proto", ORDERS);
        let set = protox::compile([&file], [dir.path()])
            .unwrap()
            .encode_to_vec();
        let from_set = MessageSchema::from_descriptor_set(&set, "shop.Order").unwrap();
        let from_file = MessageSchema::from_proto_file(&file, &[], ".shop.Order").unwrap();
        assert_eq!(
            from_set.descriptor().fields().count(),
            from_file.descriptor().fields().count()
        );
    }
}
