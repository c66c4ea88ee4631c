//! Generated (`prost`) message types as Kafka key and value formats.

use fjord::BoxError;
use fjord_kafka::format::{BytesFormat, SerializationFormat};
use std::marker::PhantomData;

/// The protobuf binary encoding of a `prost` message type `M`, as a Kafka key or value format
/// in both directions (Flink's protobuf `DeserializationSchema`/`SerializationSchema` of a
/// generated class). Bytes that are not an `M` are a malformed record: the source fails the
/// job naming topic, partition and offset, unless told to skip malformed records.
pub struct Protobuf<M>(PhantomData<fn() -> M>);

impl<M> Protobuf<M> {
    /// The format for `M`.
    pub fn new() -> Self {
        Protobuf(PhantomData)
    }
}

impl<M> Default for Protobuf<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> Clone for Protobuf<M> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<M> std::fmt::Debug for Protobuf<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Protobuf<{}>", std::any::type_name::<M>())
    }
}

impl<M: prost::Message + Default + 'static> BytesFormat<M> for Protobuf<M> {
    fn parse(&self, bytes: &[u8]) -> Result<M, BoxError> {
        M::decode(bytes)
            .map_err(|e| format!("not a valid {} message: {e}", std::any::type_name::<M>()).into())
    }
}

impl<M: prost::Message + 'static> SerializationFormat<M> for Protobuf<M> {
    fn serialize(&self, value: &M) -> Result<Vec<u8>, BoxError> {
        Ok(value.encode_to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Order {
        #[prost(int64, tag = "1")]
        id: i64,
        #[prost(string, tag = "2")]
        customer: String,
        #[prost(double, optional, tag = "3")]
        amount: Option<f64>,
    }

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let format = Protobuf::<Order>::new();
        let order = Order {
            id: 7,
            customer: "alice".into(),
            amount: Some(10.5),
        };
        let bytes = format.serialize(&order).unwrap();
        // Field 1 varint 7, then field 2 length-delimited "alice": protobuf's wire format.
        assert_eq!(&bytes[..2], &[0x08, 7]);
        assert_eq!(&bytes[2..4], &[0x12, 5]);
        assert_eq!(format.parse(&bytes).unwrap(), order);
        let err = format.parse(&[0x0a, 0xff]).unwrap_err().to_string();
        assert!(
            err.contains("not a valid") && err.contains("Order"),
            "{err}"
        );
    }
}
