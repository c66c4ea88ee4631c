//! Reading one line of a buffered file: `BufRead::read_until`'s semantics, with the `memchr`
//! crate's vectorized search for the newline (std's is a word-at-a-time loop) and, when the
//! line lies whole in the reader's buffer, no copy into a line buffer before the caller's own
//! copy. Reading files line by line was a tenth of the Nexmark queries' CPU time (the search,
//! then the double copy; BENCHMARKS.md, issue 14).

use std::io::{BufRead, Result};

/// One line as [`next_line`] found it.
pub(crate) enum Line<'a> {
    /// The line's bytes (without the newline) lie in the reader's buffer; `consumed` bytes
    /// (with the newline) are to be consumed once the caller is done with them.
    Borrowed { bytes: &'a [u8], consumed: usize },
    /// The line spanned several fills of the buffer and was gathered into the scratch
    /// buffer, without the newline; `consumed` bytes were read.
    Gathered { consumed: usize },
    /// The end of the input.
    End,
}

/// The next line of `reader`, without its `\n` (a `\r` before it stays; the caller decides).
/// A last line without a newline is a line. `scratch` is cleared and used when the line does
/// not lie whole in the buffer.
///
/// # Errors
/// What reading fails with.
pub(crate) fn next_line<'a, R: BufRead>(
    reader: &'a mut R,
    scratch: &mut Vec<u8>,
) -> Result<Line<'a>> {
    scratch.clear();
    let mut consumed = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if consumed == 0 {
                Line::End
            } else {
                Line::Gathered { consumed }
            });
        }
        match memchr::memchr(b'\n', available) {
            Some(i) if consumed == 0 => {
                // `available` cannot be returned: the borrow checker would then hold
                // `reader` for the rest of the loop, which consumes from it. A second
                // `fill_buf` returns the same buffered bytes without reading.
                let bytes = &reader.fill_buf()?[..i];
                return Ok(Line::Borrowed {
                    bytes,
                    consumed: i + 1,
                });
            }
            Some(i) => {
                scratch.extend_from_slice(&available[..i]);
                reader.consume(i + 1);
                return Ok(Line::Gathered {
                    consumed: consumed + i + 1,
                });
            }
            None => {
                let n = available.len();
                scratch.extend_from_slice(available);
                reader.consume(n);
                consumed += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    /// Every line of `text` through a buffer of `capacity` bytes, each with the bytes read.
    fn lines(text: &[u8], capacity: usize) -> Vec<(Vec<u8>, usize)> {
        let mut reader = BufReader::with_capacity(capacity, text);
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        loop {
            match next_line(&mut reader, &mut scratch).unwrap() {
                Line::Borrowed { bytes, consumed } => {
                    out.push((bytes.to_vec(), consumed));
                    reader.consume(consumed);
                }
                Line::Gathered { consumed } => out.push((scratch.clone(), consumed)),
                Line::End => return out,
            }
        }
    }

    #[test]
    fn lines_are_those_of_read_until_whatever_the_buffer_size() {
        let text = b"first\nsecond line\r\n\n\na much longer line than the small buffers\nlast";
        let mut expected = Vec::new();
        let mut reader = BufReader::new(&text[..]);
        loop {
            let mut line = Vec::new();
            let n = reader.read_until(b'\n', &mut line).unwrap();
            if n == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            expected.push((line, n));
        }
        for capacity in [1, 2, 3, 5, 8, 64, 4096] {
            assert_eq!(
                lines(text, capacity),
                expected,
                "buffer of {capacity} bytes"
            );
        }
        assert!(lines(b"", 8).is_empty());
    }
}
