//! The Confluent schema-registry wire format of a Kafka key or value: the magic byte 0, the
//! writer schema's registry id as a 4-byte big-endian integer, then the Avro datum.

use crate::error::AvroError;

/// The first byte of a record in the wire format.
pub const MAGIC_BYTE: u8 = 0;

/// The length of the header: magic byte and schema id.
pub const HEADER_LEN: usize = 5;

/// `datum` framed with the id of its writer schema.
pub fn frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + datum.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

/// The schema id and the datum of a framed record.
///
/// # Errors
/// [`AvroError::WireFormat`] for fewer than 5 bytes or another first byte than 0.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), AvroError> {
    if bytes.len() < HEADER_LEN {
        return Err(AvroError::WireFormat(format!(
            "{} bytes, fewer than the 5 of the header",
            bytes.len()
        )));
    }
    if bytes[0] != MAGIC_BYTE {
        return Err(AvroError::WireFormat(format!(
            "the first byte is {}, not the magic byte 0",
            bytes[0]
        )));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[HEADER_LEN..]))
}
