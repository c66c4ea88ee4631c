//! The writer's options: compression, row group and page sizes, dictionary encoding and how
//! timestamps are stored, under Flink's (parquet-hadoop's) option names.

use crate::error::{ParquetFormatError, Result};
use crate::schema::TimestampEncoding;

/// A compression codec of the pages (pure-Rust implementations only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// No compression.
    Uncompressed,
    /// Snappy (Flink's default).
    #[default]
    Snappy,
    /// Gzip at its default level.
    Gzip,
    /// LZ4 raw blocks (`LZ4_RAW`).
    Lz4Raw,
}

impl Codec {
    /// The codec of a `parquet.compression` value (case-insensitive: `UNCOMPRESSED` or
    /// `none`, `SNAPPY`, `GZIP`, `LZ4_RAW`).
    ///
    /// # Errors
    /// Any other name; `ZSTD`, `BROTLI`, `LZ4` and `LZO` are named as not available.
    pub fn parse(name: &str) -> Result<Self> {
        let bad = |message: String| ParquetFormatError::Option {
            option: "parquet.compression".into(),
            message,
        };
        match name.to_ascii_uppercase().as_str() {
            "UNCOMPRESSED" | "NONE" => Ok(Codec::Uncompressed),
            "SNAPPY" => Ok(Codec::Snappy),
            "GZIP" => Ok(Codec::Gzip),
            "LZ4_RAW" => Ok(Codec::Lz4Raw),
            "ZSTD" | "BROTLI" | "LZ4" | "LZO" => Err(bad(format!(
                "{name} is not available in Fjord (only pure-Rust codecs are built in: zstd and \
                 brotli would compile C code, LZ4 (hadoop framing) and LZO are deprecated); use \
                 SNAPPY, GZIP, LZ4_RAW or UNCOMPRESSED"
            ))),
            _ => Err(bad(format!(
                "unknown codec '{name}'; use SNAPPY, GZIP, LZ4_RAW or UNCOMPRESSED"
            ))),
        }
    }

    pub(crate) fn to_parquet(self) -> parquet::basic::Compression {
        use parquet::basic::Compression;
        match self {
            Codec::Uncompressed => Compression::UNCOMPRESSED,
            Codec::Snappy => Compression::SNAPPY,
            Codec::Gzip => Compression::GZIP(Default::default()),
            Codec::Lz4Raw => Compression::LZ4_RAW,
        }
    }
}

/// How Parquet files are written. The defaults are Flink's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetOptions {
    /// `parquet.compression` (default SNAPPY).
    pub codec: Codec,
    /// `parquet.block.size`: a row group is written once its buffered rows reach this many
    /// bytes (default 128 MiB; a part rolled earlier ends its row group with it).
    pub row_group_bytes: usize,
    /// `parquet.page.size`: the data page size limit in bytes (default 1 MiB).
    pub page_bytes: usize,
    /// `parquet.enable.dictionary` (default true).
    pub dictionary: bool,
    /// `parquet.write.int64.timestamp` and `parquet.timestamp.time.unit`: INT96 by
    /// default, INT64 in micros (Flink's default unit) when set.
    pub timestamps: TimestampEncoding,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            codec: Codec::Snappy,
            row_group_bytes: 128 << 20,
            page_bytes: 1 << 20,
            dictionary: true,
            timestamps: TimestampEncoding::Int96,
        }
    }
}

/// The option names [`ParquetOptions::from_options`] takes, for error messages of callers.
pub const OPTION_NAMES: &[&str] = &[
    "parquet.compression",
    "parquet.block.size",
    "parquet.page.size",
    "parquet.enable.dictionary",
    "parquet.write.int64.timestamp",
    "parquet.timestamp.time.unit",
    "parquet.utc-timezone",
];

impl ParquetOptions {
    /// The options of Flink's names in `options` (others are ignored; see
    /// [`OPTION_NAMES`]). `parquet.utc-timezone` is accepted for compatibility and changes
    /// nothing: Fjord's TIMESTAMPs carry no zone and are written as their wall-clock value
    /// (what Flink writes with `parquet.utc-timezone` = `true`).
    ///
    /// # Errors
    /// A value that does not read (naming the option and what it takes).
    pub fn from_options<'a>(options: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut o = ParquetOptions::default();
        let mut int64 = false;
        let mut unit = TimestampEncoding::Int64Micros;
        for (key, value) in options {
            let bad = |what: &str| ParquetFormatError::Option {
                option: key.to_string(),
                message: format!("'{value}' is not {what}"),
            };
            let boolean = || match value.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(bad("true or false")),
            };
            let bytes = || {
                value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| bad("a positive number of bytes"))
            };
            match key {
                "parquet.compression" => o.codec = Codec::parse(value)?,
                "parquet.block.size" => o.row_group_bytes = bytes()?,
                "parquet.page.size" => o.page_bytes = bytes()?,
                "parquet.enable.dictionary" => o.dictionary = boolean()?,
                "parquet.write.int64.timestamp" => int64 = boolean()?,
                "parquet.utc-timezone" => {
                    boolean()?;
                }
                "parquet.timestamp.time.unit" => {
                    unit = match value.to_ascii_lowercase().as_str() {
                        "millis" => TimestampEncoding::Int64Millis,
                        "micros" => TimestampEncoding::Int64Micros,
                        "nanos" => TimestampEncoding::Int64Nanos,
                        _ => return Err(bad("millis, micros or nanos")),
                    }
                }
                _ => {}
            }
        }
        if int64 {
            o.timestamps = unit;
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_option_names_read() {
        let o = ParquetOptions::from_options([
            ("parquet.compression", "gzip"),
            ("parquet.block.size", "1024"),
            ("parquet.write.int64.timestamp", "true"),
            ("parquet.timestamp.time.unit", "millis"),
            ("other", "ignored"),
        ])
        .unwrap();
        assert_eq!(o.codec, Codec::Gzip);
        assert_eq!(o.row_group_bytes, 1024);
        assert_eq!(o.timestamps, TimestampEncoding::Int64Millis);
        // The unit alone does not switch to INT64.
        let o = ParquetOptions::from_options([("parquet.timestamp.time.unit", "nanos")]).unwrap();
        assert_eq!(o.timestamps, TimestampEncoding::Int96);
    }

    #[test]
    fn bad_values_name_the_option() {
        let err = ParquetOptions::from_options([("parquet.compression", "zstd")]).unwrap_err();
        assert!(err.to_string().contains("parquet.compression"), "{err}");
        assert!(err.to_string().contains("C code"), "{err}");
        let err = ParquetOptions::from_options([("parquet.block.size", "big")]).unwrap_err();
        assert!(err.to_string().contains("parquet.block.size"), "{err}");
    }
}
