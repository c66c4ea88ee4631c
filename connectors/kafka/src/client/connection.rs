//! One TCP connection to one broker: request framing, correlation ids, the API versions the
//! broker supports (ApiVersions, asked once when connecting), TLS and SASL authentication
//! (`sasl`) when the settings ask for them.

use super::Result;
use super::config::Settings;
use crate::error::KafkaError;
#[cfg(test)]
use bytes::Buf;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::ops::RangeInclusive;
use std::time::Duration;

/// Largest response accepted (a fetch response is bounded by `fetch.max.bytes`, 50 MiB by
/// default; leave room for overhead).
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

/// Source of [`Connection::id`].
static NEXT_CONNECTION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A connection. Requests are answered in order; [`call`](Connection::call) has one in
/// flight, the producer pipelines with [`send_request`](Connection::send_request) and
/// [`receive`](Connection::receive).
pub(crate) struct Connection {
    /// Unique per process: tells a reconnected broker from the connection a request went out on.
    id: u64,
    addr: String,
    stream: Stream,
    client_id: StrBytes,
    next_correlation_id: i32,
    request_timeout: Duration,
    /// API key -> (min, max) version the broker supports.
    versions: HashMap<i16, (i16, i16)>,
}

/// Human name of an API key, for errors.
pub(crate) fn api_name(key: i16) -> &'static str {
    match ApiKey::try_from(key) {
        Ok(ApiKey::Produce) => "Produce",
        Ok(ApiKey::Fetch) => "Fetch",
        Ok(ApiKey::ListOffsets) => "ListOffsets",
        Ok(ApiKey::Metadata) => "Metadata",
        Ok(ApiKey::OffsetCommit) => "OffsetCommit",
        Ok(ApiKey::OffsetFetch) => "OffsetFetch",
        Ok(ApiKey::FindCoordinator) => "FindCoordinator",
        Ok(ApiKey::ApiVersions) => "ApiVersions",
        Ok(ApiKey::CreateTopics) => "CreateTopics",
        Ok(ApiKey::InitProducerId) => "InitProducerId",
        Ok(ApiKey::AddPartitionsToTxn) => "AddPartitionsToTxn",
        Ok(ApiKey::EndTxn) => "EndTxn",
        Ok(ApiKey::CreatePartitions) => "CreatePartitions",
        Ok(ApiKey::DescribeTransactions) => "DescribeTransactions",
        Ok(ApiKey::SaslHandshake) => "SaslHandshake",
        Ok(ApiKey::SaslAuthenticate) => "SaslAuthenticate",
        _ => "request",
    }
}

impl Connection {
    /// Connects to `addr` (host:port), runs the TLS handshake when `security.protocol` is SSL or
    /// SASL_SSL, asks the broker's API versions, and authenticates with SASL when
    /// `security.protocol` is SASL_PLAINTEXT or SASL_SSL.
    pub fn open(addr: &str, settings: &Settings) -> Result<Self> {
        let io = |source| KafkaError::Io {
            broker: addr.to_string(),
            source,
        };
        let resolved: Vec<_> = addr.to_socket_addrs().map_err(io)?.collect();
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address resolved");
        let mut stream = None;
        for sock in resolved {
            match TcpStream::connect_timeout(&sock, settings.request_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let tcp = stream.ok_or_else(|| io(last))?;
        tcp.set_nodelay(true).map_err(io)?;
        let stream = match &settings.tls {
            None => Stream::Plain(tcp),
            Some(tls) => Stream::Tls(Box::new(handshake(addr, tcp, tls.clone(), settings)?)),
        };
        let mut conn = Connection {
            id: NEXT_CONNECTION_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            addr: addr.to_string(),
            stream,
            client_id: StrBytes::from_string(settings.client_id.clone()),
            next_correlation_id: 1,
            request_timeout: settings.request_timeout,
            versions: HashMap::new(),
        };
        conn.negotiate()?;
        if let Some(sasl) = &settings.sasl {
            super::sasl::authenticate(&mut conn, sasl)?;
        }
        Ok(conn)
    }

    /// This connection's unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// host:port of the broker.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn negotiate(&mut self) -> Result<()> {
        let mut request = ApiVersionsRequest::default();
        request.client_software_name = StrBytes::from_static_str("fjord-kafka");
        request.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        // v3 is understood by every broker since Kafka 2.4, including 4.x.
        let response: ApiVersionsResponse = self.call(&request, 3, Duration::ZERO)?;
        if response.error_code != 0 {
            return Err(KafkaError::broker(
                "ApiVersions",
                self.addr.clone(),
                response.error_code,
            ));
        }
        self.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    /// The highest version of `R` both the broker and `ours` support.
    pub fn version<R: Request>(&self, ours: &RangeInclusive<i16>) -> Result<i16> {
        let name = api_name(R::KEY);
        let Some(&(min, max)) = self.versions.get(&R::KEY) else {
            return Err(KafkaError::Protocol {
                api: name,
                message: format!("broker {} does not support {name} at all", self.addr),
            });
        };
        let high = max.min(*ours.end()).min(R::VERSIONS.max);
        let low = min.max(*ours.start());
        if high < low {
            return Err(KafkaError::Protocol {
                api: name,
                message: format!(
                    "broker {} supports {name} versions {min}..={max}, this client {}..={}; \
                     the broker is too old or too new for this client",
                    self.addr,
                    ours.start(),
                    ours.end()
                ),
            });
        }
        Ok(high)
    }

    /// Sends `request` at `version` and reads its response. `extra_wait` is added to the
    /// request timeout for requests the broker may legitimately hold (fetch `max_wait`).
    pub fn call<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        extra_wait: Duration,
    ) -> Result<R::Response> {
        let correlation_id = self.send_request(request, version)?;
        self.receive::<R>(correlation_id, version, extra_wait)
    }

    /// Reads the response to the request sent with `correlation_id` (the oldest unanswered).
    pub fn receive<R: Request>(
        &mut self,
        correlation_id: i32,
        version: i16,
        extra_wait: Duration,
    ) -> Result<R::Response> {
        let api = api_name(R::KEY);
        let mut body = self.read_frame(api, extra_wait)?;
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| protocol(api, format!("bad response header from {}: {e}", self.addr)))?;
        if header.correlation_id != correlation_id {
            return Err(protocol(
                api,
                format!(
                    "response from {} has correlation id {} where {correlation_id} was expected",
                    self.addr, header.correlation_id
                ),
            ));
        }
        R::Response::decode(&mut body, version).map_err(|e| {
            protocol(
                api,
                format!("cannot decode v{version} response from {}: {e}", self.addr),
            )
        })
    }

    /// Sends a request the broker does not answer (Produce with acks=0).
    pub fn send_only<R: Request>(&mut self, request: &R, version: i16) -> Result<()> {
        self.send_request(request, version).map(|_| ())
    }

    /// Writes a request; returns its correlation id for [`receive`](Self::receive).
    pub fn send_request<R: Request>(&mut self, request: &R, version: i16) -> Result<i32> {
        let api = api_name(R::KEY);
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1).max(1);
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation_id;
        header.client_id = Some(self.client_id.clone());
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(|e| protocol(api, format!("cannot encode header: {e}")))?;
        request
            .encode(&mut buf, version)
            .map_err(|e| protocol(api, format!("cannot encode v{version} request: {e}")))?;
        let len = i32::try_from(buf.len() - 4)
            .map_err(|_| protocol(api, "request larger than 2 GiB".into()))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream
            .tcp()
            .set_write_timeout(Some(self.request_timeout))
            .and_then(|()| self.stream.write_all(&buf))
            .and_then(|()| self.stream.flush())
            .map_err(|source| self.io_error(source))?;
        Ok(correlation_id)
    }

    fn read_frame(&mut self, api: &'static str, extra_wait: Duration) -> Result<Bytes> {
        let timeout = self.request_timeout + extra_wait;
        self.stream
            .tcp()
            .set_read_timeout(Some(timeout))
            .map_err(|source| self.io_error(source))?;
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .map_err(|source| self.io_error(source))?;
        let len = i32::from_be_bytes(len);
        if len < 0 || len as usize > MAX_RESPONSE {
            return Err(protocol(
                api,
                format!(
                    "response of {len} bytes from {} is not acceptable",
                    self.addr
                ),
            ));
        }
        let mut body = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut body)
            .map_err(|source| self.io_error(source))?;
        Ok(Bytes::from(body))
    }

    fn io_error(&self, source: std::io::Error) -> KafkaError {
        let source = match source.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no answer within request.timeout.ms ({} ms)",
                    self.request_timeout.as_millis()
                ),
            ),
            _ => source,
        };
        KafkaError::Io {
            broker: self.addr.clone(),
            source,
        }
    }
}

/// A broker connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Runs the TLS handshake on `tcp` (bounded by the request timeout), so certificate problems
/// surface when connecting, with what to check.
fn handshake(
    addr: &str,
    mut tcp: TcpStream,
    tls: std::sync::Arc<rustls::ClientConfig>,
    settings: &Settings,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let fail = |e: std::io::Error| KafkaError::Io {
        broker: addr.to_string(),
        source: std::io::Error::new(
            e.kind(),
            format!(
                "TLS handshake failed: {e}; check that the listener speaks SSL and that \
                 ssl.truststore.location (or .certificates) holds the CA of its certificate, which \
                 must name `{host}` (or set ssl.endpoint.identification.algorithm= empty)"
            ),
        ),
    };
    let mut conn = rustls::ClientConnection::new(tls, super::tls::server_name(host)?)
        .map_err(|e| fail(std::io::Error::other(e)))?;
    tcp.set_read_timeout(Some(settings.request_timeout))
        .map_err(fail)?;
    tcp.set_write_timeout(Some(settings.request_timeout))
        .map_err(fail)?;
    // Each round trip makes progress or fails; bounded anyway.
    for _ in 0..100 {
        if !conn.is_handshaking() {
            return Ok(rustls::StreamOwned::new(conn, tcp));
        }
        conn.complete_io(&mut tcp).map_err(fail)?;
    }
    Err(fail(std::io::Error::other("handshake did not finish")))
}

fn protocol(api: &'static str, message: String) -> KafkaError {
    KafkaError::Protocol { api, message }
}

/// Reads a big-endian i32 length-prefixed frame from a buffer (unit tests of the framing).
#[cfg(test)]
fn split_frame(buf: &mut Bytes) -> Option<Bytes> {
    if buf.remaining() < 4 {
        return None;
    }
    let len = (&buf[..4]).get_i32() as usize;
    if buf.remaining() < 4 + len {
        return None;
    }
    buf.advance(4);
    Some(buf.split_to(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;
    use std::net::TcpListener;

    /// A fake broker on loopback that checks the framing of what the client sends and
    /// answers ApiVersions, then one Metadata request with a wrong correlation id.
    #[test]
    fn frames_requests_and_checks_correlation_ids() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            for answer_wrong in [false, true] {
                let mut len = [0u8; 4];
                sock.read_exact(&mut len).unwrap();
                let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
                sock.read_exact(&mut body).unwrap();
                let mut framed = BytesMut::new();
                framed.put_slice(&len);
                framed.put_slice(&body);
                let mut framed = framed.freeze();
                let mut body = split_frame(&mut framed).unwrap();
                let header =
                    kafka_protocol::protocol::decode_request_header_from_buffer(&mut body).unwrap();
                seen.push((
                    header.request_api_key,
                    header.request_api_version,
                    header.correlation_id,
                ));
                let mut out = BytesMut::new();
                out.put_i32(0);
                let mut rh = ResponseHeader::default();
                rh.correlation_id = header.correlation_id + i32::from(answer_wrong);
                if header.request_api_key == ApiKey::ApiVersions as i16 {
                    rh.encode(&mut out, 0).unwrap();
                    let mut resp = ApiVersionsResponse::default();
                    let mut v =
                        kafka_protocol::messages::api_versions_response::ApiVersion::default();
                    v.api_key = ApiKey::Metadata as i16;
                    v.min_version = 0;
                    v.max_version = 12;
                    resp.api_keys.push(v);
                    resp.encode(&mut out, 3).unwrap();
                } else {
                    rh.encode(&mut out, 1).unwrap();
                }
                let n = (out.len() - 4) as i32;
                out[..4].copy_from_slice(&n.to_be_bytes());
                sock.write_all(&out).unwrap();
            }
            seen
        });
        let settings = Settings::parse(&super::super::ClientConfig {
            properties: [("bootstrap.servers".to_string(), addr.clone())].into(),
        })
        .unwrap();
        let mut conn = Connection::open(&addr, &settings).unwrap();
        assert_eq!(conn.version::<MetadataRequest>(&(1..=9)).unwrap(), 9);
        assert_eq!(conn.version::<MetadataRequest>(&(1..=13)).unwrap(), 12);
        let err = conn
            .call(&MetadataRequest::default(), 12, Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("correlation id 3 where 2 was expected"),
            "{err}"
        );
        let seen = server.join().unwrap();
        assert_eq!(
            seen,
            vec![
                (ApiKey::ApiVersions as i16, 3, 1),
                (ApiKey::Metadata as i16, 12, 2)
            ]
        );
        let err = conn
            .version::<ApiVersionsRequest>(&(0..=3))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not support ApiVersions"), "{err}");
    }
}
