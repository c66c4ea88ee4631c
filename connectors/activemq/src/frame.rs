//! STOMP 1.2 frames and their wire format (pure; unit-tested without a broker).
//!
//! A frame is a command line, header lines `name:value`, an empty line, a body and a NUL
//! byte. Header names and values are escaped (`\\`, `\n`, `\r`, `\c` for `:`) in every frame
//! but `CONNECT` and `CONNECTED`; the first occurrence of a repeated header wins. A body may
//! contain NUL bytes when the frame has a `content-length` header, which [`Frame::encode`]
//! always writes for a non-empty body. Between frames a peer may send end-of-line bytes:
//! heart-beats.

use std::fmt;

/// Largest frame [`decode`] accepts (command, headers and body).
pub(crate) const MAX_FRAME_BYTES: usize = 64 << 20;

/// One STOMP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// `CONNECT`, `SEND`, `MESSAGE`, ...
    pub(crate) command: String,
    /// Headers in wire order, unescaped.
    pub(crate) headers: Vec<(String, String)>,
    /// The body bytes.
    pub(crate) body: Vec<u8>,
}

/// What [`decode`] found at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// An end-of-line between frames: the peer's heart-beat.
    HeartBeat,
    /// A whole frame.
    Frame(Frame),
}

/// Bytes that are not a STOMP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameError(pub(crate) String);

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a STOMP frame: {}", self.0)
    }
}

impl Frame {
    /// A frame with no headers and no body.
    pub(crate) fn new(command: &str) -> Frame {
        Frame {
            command: command.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Frame {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sets the body.
    pub(crate) fn body(mut self, body: Vec<u8>) -> Frame {
        self.body = body;
        self
    }

    /// The value of header `name` (its first occurrence).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn escapes(command: &str) -> bool {
        command != "CONNECT" && command != "CONNECTED"
    }

    /// Appends the frame's wire bytes to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let escape = Self::escapes(&self.command);
        out.extend_from_slice(self.command.as_bytes());
        out.push(b'\n');
        for (name, value) in &self.headers {
            if name == "content-length" {
                continue;
            }
            push_escaped(out, name, escape);
            out.push(b':');
            push_escaped(out, value, escape);
            out.push(b'\n');
        }
        if !self.body.is_empty() {
            out.extend_from_slice(format!("content-length:{}\n", self.body.len()).as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out.push(0);
    }

    /// The frame's wire bytes.
    #[cfg(test)]
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn push_escaped(out: &mut Vec<u8>, s: &str, escape: bool) {
    if !escape {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b':' => out.extend_from_slice(b"\\c"),
            b => out.push(b),
        }
    }
}

fn unescape(s: &str, escape: bool) -> Result<String, FrameError> {
    if !escape || !s.contains('\\') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('c') => out.push(':'),
            other => {
                return Err(FrameError(format!(
                    "undefined escape sequence `\\{}` in header `{s}`",
                    other.map(String::from).unwrap_or_default()
                )));
            }
        }
    }
    Ok(out)
}

/// Takes one heart-beat or frame off the front of `buf`; `Ok(None)` when `buf` does not hold
/// a whole one yet (read more and call again).
///
/// # Errors
/// [`FrameError`] for bytes that cannot be a frame (bad header line, bad escape, bad
/// `content-length`, no NUL after the body, a frame above [`MAX_FRAME_BYTES`]). The
/// connection cannot continue after one.
pub(crate) fn decode(buf: &mut Vec<u8>) -> Result<Option<Decoded>, FrameError> {
    match buf.first() {
        None => return Ok(None),
        Some(b'\n') => {
            buf.drain(..1);
            return Ok(Some(Decoded::HeartBeat));
        }
        Some(b'\r') => {
            return match buf.get(1) {
                None => Ok(None),
                Some(b'\n') => {
                    buf.drain(..2);
                    Ok(Some(Decoded::HeartBeat))
                }
                Some(_) => Err(FrameError("a lone carriage return between frames".into())),
            };
        }
        Some(_) => {}
    }
    // The header section ends at the first empty line.
    let Some(header_end) = find_blank_line(buf) else {
        if buf.len() > MAX_FRAME_BYTES {
            return Err(FrameError(format!(
                "headers longer than {MAX_FRAME_BYTES} bytes"
            )));
        }
        return Ok(None);
    };
    let (head_len, body_start) = header_end;
    let head = std::str::from_utf8(&buf[..head_len])
        .map_err(|_| FrameError("command or headers are not UTF-8".into()))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let command = lines.next().unwrap_or_default().to_string();
    if command.is_empty() {
        return Err(FrameError("a frame without a command".into()));
    }
    let escape = Frame::escapes(&command);
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| FrameError(format!("header line `{line}` has no `:`")))?;
        headers.push((unescape(name, escape)?, unescape(value, escape)?));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| FrameError(format!("content-length `{v}` is not a number")))
        })
        .transpose()?;
    let body_end = match length {
        Some(len) => {
            if len > MAX_FRAME_BYTES {
                return Err(FrameError(format!(
                    "content-length {len} is above {MAX_FRAME_BYTES} bytes"
                )));
            }
            if buf.len() < body_start + len + 1 {
                return Ok(None);
            }
            if buf[body_start + len] != 0 {
                return Err(FrameError(format!(
                    "no NUL after a body of content-length {len}"
                )));
            }
            body_start + len
        }
        None => match buf[body_start..].iter().position(|b| *b == 0) {
            Some(i) => body_start + i,
            None => {
                if buf.len() > MAX_FRAME_BYTES {
                    return Err(FrameError(format!(
                        "a body longer than {MAX_FRAME_BYTES} bytes"
                    )));
                }
                return Ok(None);
            }
        },
    };
    let body = buf[body_start..body_end].to_vec();
    buf.drain(..=body_end);
    Ok(Some(Decoded::Frame(Frame {
        command,
        headers,
        body,
    })))
}

/// The end of the header section: (bytes of command and headers, start of the body).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(nl) = buf[i..].iter().position(|b| *b == b'\n') {
        let nl = i + nl;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some((nl, nl + 2)),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some((nl, nl + 3)),
            Some(_) => i = nl + 1,
            None => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> Result<Option<Decoded>, FrameError> {
        decode(&mut bytes.to_vec())
    }

    #[test]
    fn frames_round_trip_with_escapes_and_binary_bodies() {
        let cases = [
            Frame::new("SEND")
                .header("destination", "/queue/a")
                .header("correlation-id", "a:b\\c\nd")
                .body(b"with\0nul".to_vec()),
            Frame::new("SEND").header("destination", "/queue/empty"),
            Frame::new("DISCONNECT"),
        ];
        for f in cases {
            let mut buf = f.to_bytes();
            buf.extend_from_slice(b"\n\r\n");
            let decoded = decode(&mut buf).unwrap().unwrap();
            let Decoded::Frame(mut back) = decoded else {
                panic!("a frame")
            };
            back.headers.retain(|(n, _)| n != "content-length");
            assert_eq!(back, f);
            assert_eq!(decode(&mut buf).unwrap(), Some(Decoded::HeartBeat));
            assert_eq!(decode(&mut buf).unwrap(), Some(Decoded::HeartBeat));
            assert_eq!(decode(&mut buf).unwrap(), None);
        }
    }

    #[test]
    fn connect_frames_are_not_escaped() {
        let f = Frame::new("CONNECT").header("passcode", "a:b");
        assert_eq!(f.to_bytes(), b"CONNECT\npasscode:a:b\n\n\0");
        let back = frame(b"CONNECTED\nsession:ID\\c1\n\n\0").unwrap().unwrap();
        assert_eq!(
            back,
            Decoded::Frame(Frame::new("CONNECTED").header("session", "ID\\c1"))
        );
    }

    #[test]
    fn a_message_from_activemq_reads() {
        let wire = b"MESSAGE\nexpires:0\ncorrelation-id:a\ndestination:/queue/q1\nack:ID\\cvm-5\\c1\nsubscription:0\nmessage-id:ID\\cvm-3\\c1\\c1\\c1\\c1\nmessage-id:second\npersistent:true\n\n1\0\n";
        let mut buf = wire.to_vec();
        let Some(Decoded::Frame(f)) = decode(&mut buf).unwrap() else {
            panic!("a frame")
        };
        assert_eq!(f.command, "MESSAGE");
        assert_eq!(f.get("ack"), Some("ID:vm-5:1"));
        assert_eq!(f.get("message-id"), Some("ID:vm-3:1:1:1:1"), "first wins");
        assert_eq!(f.body, b"1");
        assert_eq!(buf, b"\n");
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let whole = Frame::new("MESSAGE")
            .header("ack", "1")
            .body(b"abc".to_vec())
            .to_bytes();
        for cut in 0..whole.len() {
            assert_eq!(frame(&whole[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(matches!(frame(&whole), Ok(Some(Decoded::Frame(_)))));
        assert_eq!(frame(b"\r").unwrap(), None);
    }

    #[test]
    fn garbage_is_refused() {
        let cases: [(&[u8], &str); 5] = [
            (b"SEND\nnocolon\n\n\0", "has no `:`"),
            (b"SEND\na:\\t\n\n\0", "undefined escape"),
            (b"SEND\ncontent-length:x\n\n\0", "not a number"),
            (b"SEND\ncontent-length:1\n\nab\0", "no NUL"),
            (b"\rX", "lone carriage return"),
        ];
        for (bytes, expected) in cases {
            let e = frame(bytes).unwrap_err().to_string();
            assert!(e.contains(expected), "{e}");
        }
    }
}
