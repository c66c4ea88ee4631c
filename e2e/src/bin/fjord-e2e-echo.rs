//! `fjord-e2e-echo`: the tiny project binary of the smoke test.
//!
//! - `fjord-e2e-echo serve [--port P]`: HTTP server on `$POD_IP:P` (default port 8080; `POD_IP`
//!   comes from the downward API, falling back to 127.0.0.1). Answers every request with
//!   `hello from <POD_NAME> at <POD_IP>` and `/ready` with 200. Exits 0 on SIGTERM... or rather
//!   when killed; it holds no state.
//! - `fjord-e2e-echo get <url> [--expect TEXT] [--attempts N]`: GET `url` (resolving the host
//!   name through the system resolver, i.e. the Pod's `/etc/hosts`), print the body, exit 0 if it
//!   contains TEXT. Retries up to N times (default 30), 200 ms apart.
//! - `fjord-e2e-echo kube-check [--expect-user NAME]`: build a kube-rs client exactly as an
//!   operator does (`Config::infer`: kubeconfig if any, else in-cluster service account), ask the
//!   API server who it is (SelfSubjectReview), print it, exit 0 if it is NAME.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream, ToSocketAddrs as _};
use std::time::Duration;

use anyhow::{Context as _, bail};

fn serve(port: u16) -> anyhow::Result<()> {
    let ip = std::env::var("POD_IP").unwrap_or_else(|_| "127.0.0.1".into());
    let name = std::env::var("POD_NAME").unwrap_or_else(|_| "unknown".into());
    let listener =
        TcpListener::bind((ip.as_str(), port)).with_context(|| format!("binding {ip}:{port}"))?;
    println!("echo: listening on {ip}:{port} as {name}");
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("echo: accept: {e}");
                continue;
            }
        };
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
                break;
            }
        }
        let body = format!("hello from {name} at {ip}\n");
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(reply.as_bytes());
    }
    Ok(())
}

fn get_once(url: &str) -> anyhow::Result<String> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolved to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {authority} ({addr})"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    if !response.starts_with("HTTP/1.1 200") {
        bail!(
            "unexpected response from {url}: {}",
            response.lines().next().unwrap_or("")
        );
    }
    Ok(body)
}

fn get(url: &str, expect: Option<&str>, attempts: u32) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..attempts.max(1) {
        match get_once(url) {
            Ok(body) if expect.is_none_or(|e| body.contains(e)) => {
                print!("{body}");
                return Ok(());
            }
            Ok(body) => last = Some(anyhow::anyhow!("body {body:?} lacks {expect:?}")),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
}

fn kube_check(expect_user: Option<&str>) -> anyhow::Result<()> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = kube::Config::infer()
            .await
            .context("inferring the kube config")?;
        println!("api server {}", config.cluster_url);
        let client = kube::Client::try_from(config)?;
        let version = client.apiserver_version().await.context("GET /version")?;
        println!("version {}", version.git_version);
        let api: kube::Api<SelfSubjectReview> = kube::Api::all(client);
        let review = api
            .create(&Default::default(), &SelfSubjectReview::default())
            .await
            .context("creating a SelfSubjectReview")?;
        let user = review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .unwrap_or_default();
        println!("user {user}");
        match expect_user {
            Some(want) if want != user => bail!("authenticated as {user:?}, expected {want:?}"),
            _ => Ok(()),
        }
    })
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(
            flag(&args, "--port")
                .map(|p| p.parse())
                .transpose()?
                .unwrap_or(8080),
        ),
        Some("get") => {
            let url = args.get(1).context("usage: fjord-e2e-echo get <url>")?;
            let attempts = flag(&args, "--attempts")
                .map(|a| a.parse())
                .transpose()?
                .unwrap_or(30);
            get(url, flag(&args, "--expect").as_deref(), attempts)
        }
        Some("kube-check") => kube_check(flag(&args, "--expect-user").as_deref()),
        _ => bail!(
            "usage: fjord-e2e-echo serve [--port P] | get <url> [--expect TEXT] [--attempts N] \
             | kube-check [--expect-user NAME]"
        ),
    }
}
