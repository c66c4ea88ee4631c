//! `rest.server.max-content-length` over real HTTP: bodies above the limit are refused with 413
//! whether or not they declare their length; bodies within it reach the handlers.

use super::args;
use crate::jobmanager::config::{JobManagerArgs, JobManagerConfig};
use crate::jobmanager::{JobManagerState, RestOptions, Server};
use fjord_client::api::{ErrorBody, codes, paths};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: u64 = 1024;

async fn limited_server() -> Server {
    let config = JobManagerConfig::resolve(JobManagerArgs {
        rest_max_content_length: Some(LIMIT),
        ..args("counting")
    })
    .unwrap();
    assert_eq!(config.rest_max_content_length, LIMIT);
    let state = JobManagerState::new(&config, 0);
    Server::start_secured(
        "127.0.0.1",
        0,
        state,
        RestOptions {
            max_content_length: config.rest_max_content_length,
            ..RestOptions::default()
        },
    )
    .await
    .unwrap()
}

fn dispose_body(padding: usize) -> String {
    format!(
        "{{\"path\": \"/nowhere/savepoint-{}\"}}",
        "x".repeat(padding)
    )
}

/// POSTs `body` to the dispose endpoint in chunked transfer encoding (no Content-Length) over
/// a raw connection, and returns the status code and the response body.
async fn post_chunked(server: &Server, body: &str) -> (u16, String) {
    let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        paths::DISPOSE_SAVEPOINT
    );
    for chunk in body.as_bytes().chunks(100) {
        request.push_str(&format!("{:x}\r\n", chunk.len()));
        request.push_str(std::str::from_utf8(chunk).unwrap());
        request.push_str("\r\n");
    }
    request.push_str("0\r\n\r\n");
    // The server may answer (and close) before the whole body is sent.
    let _ = conn.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"));
    (status, answer)
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413_naming_the_setting() {
    let server = limited_server().await;
    let http = reqwest::Client::new();
    let url = format!("http://{}{}", server.addr, paths::DISPOSE_SAVEPOINT);
    let big = dispose_body(2 * LIMIT as usize);

    // Declared length above the limit: refused before the body is read.
    let response = http
        .post(&url)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let error: ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, codes::PAYLOAD_TOO_LARGE);
    assert!(
        error.message.contains("rest.server.max-content-length") && error.message.contains("1024"),
        "{}",
        error.message
    );

    // No declared length (chunked): refused once the body passes the limit.
    let (status, answer) = post_chunked(&server, &big).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains(codes::PAYLOAD_TOO_LARGE), "{answer}");

    // Within the limit, both ways: the handler answers (the savepoint does not exist).
    let small = dispose_body(10);
    let response = http
        .post(&url)
        .header("content-type", "application/json")
        .body(small.clone())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let error: ErrorBody = response.json().await.unwrap();
    assert_ne!(status, 413, "{error:?}");
    assert_ne!(error.error, codes::PAYLOAD_TOO_LARGE);
    let (status, answer) = post_chunked(&server, &small).await;
    assert_ne!(status, 413, "{answer}");
    assert!(answer.contains("savepoint"), "{answer}");
    server.stop().await;
}

#[test]
fn the_limit_comes_from_the_config_file_and_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fjord-conf.yaml");
    std::fs::write(
        &path,
        "job.name: counting\nrest.server.max-content-length: 4096\n",
    )
    .unwrap();
    let config = JobManagerConfig::resolve(JobManagerArgs {
        config: Some(path.clone()),
        ..JobManagerArgs::default()
    })
    .unwrap();
    assert_eq!(config.rest_max_content_length, 4096);
    let default = JobManagerConfig::resolve(args("counting")).unwrap();
    assert_eq!(default.rest_max_content_length, 10 << 20);
    for bad in ["0", "ten", "-1"] {
        std::fs::write(
            &path,
            format!("job.name: counting\nrest.server.max-content-length: \"{bad}\"\n"),
        )
        .unwrap();
        let err = JobManagerConfig::resolve(JobManagerArgs {
            config: Some(path.clone()),
            ..JobManagerArgs::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("rest.server.max-content-length"),
            "{bad}: {err}"
        );
    }
}
