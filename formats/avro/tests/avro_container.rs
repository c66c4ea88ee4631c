//! Avro container files of the file sink's bulk format: every codec round-trips across
//! blocks with the header Flink's readers expect, an empty part is a valid file, the codecs
//! Fjord does not write are refused by name, and a record that does not fit is an error.

use fjord::sinks::BulkFormat;
use fjord_avro::container::read_metadata;
use fjord_avro::{AvroFileFormat, Codec, parse_schema, read_serde};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: i64,
    item: Option<String>,
}

const SCHEMA: &str = r#"{"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "long"},
    {"name": "item", "type": ["null", "string"], "default": null}]}"#;

fn orders(n: i64) -> Vec<Order> {
    (0..n)
        .map(|id| Order {
            id,
            item: (id % 3 != 0).then(|| format!("item-{id}")),
        })
        .collect()
}

#[test]
fn every_codec_round_trips_across_blocks() {
    for codec in [Codec::Null, Codec::Deflate, Codec::Snappy] {
        let format = AvroFileFormat::<Order>::for_serde(SCHEMA)
            .unwrap()
            .with_codec(codec)
            .with_block_bytes(100);
        let mut writer = format.create().unwrap();
        for o in orders(500) {
            writer.add_element(o).unwrap();
        }
        let bytes = writer.finish().unwrap();
        assert_eq!(
            read_serde::<Order>(&bytes).unwrap(),
            orders(500),
            "{codec:?}"
        );
        // The header's sync marker ends the file and every block: many 100-byte blocks.
        let sync = &bytes[bytes.len() - 16..];
        let markers = bytes.windows(16).filter(|w| *w == sync).count();
        assert!(markers > 20, "{codec:?}: {markers} sync markers");
        let metadata = read_metadata(&bytes).unwrap();
        assert_eq!(metadata["avro.codec"], codec.name().as_bytes());
        let written = parse_schema(std::str::from_utf8(&metadata["avro.schema"]).unwrap());
        assert_eq!(written.unwrap(), parse_schema(SCHEMA).unwrap());
        let reader = apache_avro::Reader::new(&bytes[..]).unwrap();
        assert_eq!(
            reader.user_metadata().len(),
            0,
            "only avro.schema and avro.codec"
        );
    }
}

#[test]
fn an_empty_part_is_a_valid_file() {
    let format = AvroFileFormat::<Order>::for_serde(SCHEMA).unwrap();
    let bytes = format.create().unwrap().finish().unwrap();
    assert_eq!(read_serde::<Order>(&bytes).unwrap(), vec![]);
}

#[test]
fn codecs_by_flinks_names_and_native_ones_refused() {
    assert_eq!(Codec::from_name("SNAPPY").unwrap(), Codec::Snappy);
    assert_eq!(Codec::from_name("null").unwrap(), Codec::Null);
    assert_eq!(Codec::from_name("deflate").unwrap(), Codec::Deflate);
    for native in ["bzip2", "xz", "zstandard"] {
        let e = Codec::from_name(native).unwrap_err().to_string();
        assert!(
            e.contains(native) && e.contains("null, deflate, snappy"),
            "{e}"
        );
    }
    let e = Codec::from_name("lz4").unwrap_err().to_string();
    assert!(e.contains("'lz4' is not an Avro codec"), "{e}");
}

#[test]
fn a_record_that_does_not_fit_the_schema_is_refused() {
    #[derive(serde::Serialize)]
    struct Wrong {
        id: String,
    }
    let format = AvroFileFormat::<Wrong>::for_serde(SCHEMA).unwrap();
    let mut writer = format.create().unwrap();
    let e = writer
        .add_element(Wrong { id: "x".into() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot write the value"), "{e}");
}
