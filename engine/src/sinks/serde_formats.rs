//! Typed text formats for the exactly-once file sink, their schema taken from a
//! [`Serialize`] type: JSON lines ([`JsonLinesEncoder`], a row format) and CSV with a header
//! ([`CsvFormat`], a bulk format, since every part file starts with the header).

use super::bulk::{BulkFormat, BulkWriter, Encoder, RowFormat};
use crate::error::BoxError;
use serde::Serialize;
use std::marker::PhantomData;

/// One JSON object (or value) per line, as `serde_json` writes a record of a [`Serialize`]
/// type: a struct's fields in declaration order, by their serde names.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLinesEncoder;

impl JsonLinesEncoder {
    /// The row format of JSON lines, part files named `*.json`.
    pub fn format<T: Serialize + Send + 'static>() -> RowFormat<T> {
        RowFormat::new(JsonLinesEncoder).with_suffix(".json")
    }
}

impl<T: Serialize> Encoder<T> for JsonLinesEncoder {
    fn encode(&self, element: &T, out: &mut Vec<u8>) -> Result<(), BoxError> {
        serde_json::to_writer(&mut *out, element)
            .map_err(|e| format!("cannot write a record as JSON: {e}"))?;
        out.push(b'\n');
        Ok(())
    }
}

/// CSV part files (RFC 4180 quoting, `\n` line ends) of a [`Serialize`] struct type: the
/// columns are the struct's fields in declaration order, and every part file starts with a
/// header line of their serde names unless [`without_header`](Self::without_header) is set.
/// Fields must be scalars (numbers, strings, booleans, `Option`s of them; `None` is an empty
/// field); a nested struct, map or sequence is refused with an error naming the record.
pub struct CsvFormat<T> {
    delimiter: u8,
    header: bool,
    _t: PhantomData<fn(T)>,
}

impl<T> Default for CsvFormat<T> {
    fn default() -> Self {
        CsvFormat {
            delimiter: b',',
            header: true,
            _t: PhantomData,
        }
    }
}

impl<T> CsvFormat<T> {
    /// CSV with `,` between fields and a header line per part file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Separates fields by `delimiter` instead of `,`.
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Writes no header line.
    pub fn without_header(mut self) -> Self {
        self.header = false;
        self
    }
}

impl<T: Serialize + Send + 'static> BulkFormat<T> for CsvFormat<T> {
    fn create(&self) -> Result<Box<dyn BulkWriter<T>>, BoxError> {
        Ok(Box::new(CsvWriter {
            out: csv::WriterBuilder::new()
                .delimiter(self.delimiter)
                .has_headers(self.header)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new()),
            _t: PhantomData,
        }))
    }

    fn suffix(&self) -> &str {
        ".csv"
    }
}

struct CsvWriter<T> {
    out: csv::Writer<Vec<u8>>,
    _t: PhantomData<fn(T)>,
}

impl<T: Serialize + Send> BulkWriter<T> for CsvWriter<T> {
    fn add_element(&mut self, element: T) -> Result<(), BoxError> {
        self.out.serialize(&element).map_err(|e| {
            format!("cannot write a record as a CSV row: {e}; CSV takes structs of scalar fields")
        })?;
        // Into the Vec, so the size estimate counts it.
        self.out.flush()?;
        Ok(())
    }

    fn size_estimate(&self) -> u64 {
        self.out.get_ref().len() as u64
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, BoxError> {
        self.out
            .into_inner()
            .map_err(|e| format!("cannot finish a CSV part: {}", e.error()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Order {
        id: u32,
        customer: String,
        amount: Option<f64>,
    }

    fn order(id: u32, customer: &str, amount: Option<f64>) -> Order {
        Order {
            id,
            customer: customer.into(),
            amount,
        }
    }

    #[test]
    fn csv_parts_start_with_the_header_and_quote_as_rfc_4180() {
        let mut w = CsvFormat::<Order>::new().create().unwrap();
        w.add_element(order(1, "a,b", Some(2.5))).unwrap();
        w.add_element(order(2, "say \"hi\"", None)).unwrap();
        assert!(w.size_estimate() > 0);
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "id,customer,amount\n1,\"a,b\",2.5\n2,\"say \"\"hi\"\"\",\n"
        );
        let mut w = CsvFormat::<Order>::new()
            .without_header()
            .with_delimiter(b';')
            .create()
            .unwrap();
        w.add_element(order(3, "c", Some(1.0))).unwrap();
        assert_eq!(w.finish().unwrap(), b"3;c;1.0\n");
    }

    #[test]
    fn csv_refuses_nested_values_by_name() {
        #[derive(Serialize)]
        struct Nested {
            tags: Vec<Vec<u8>>,
        }
        let mut w = CsvFormat::<Nested>::new().create().unwrap();
        let err = w
            .add_element(Nested {
                tags: vec![vec![1]],
            })
            .unwrap_err();
        assert!(err.to_string().contains("CSV row"), "{err}");
    }

    #[test]
    fn json_lines_are_one_object_per_line() {
        let mut w = JsonLinesEncoder::format::<Order>().create().unwrap();
        w.add_element(order(1, "a", None)).unwrap();
        w.add_element(order(2, "b\nc", Some(1.5))).unwrap();
        assert_eq!(
            String::from_utf8(w.finish().unwrap()).unwrap(),
            "{\"id\":1,\"customer\":\"a\",\"amount\":null}\n\
             {\"id\":2,\"customer\":\"b\\nc\",\"amount\":1.5}\n"
        );
    }
}
