//! The HTTP client of one writer: bulk requests to the cluster's hosts, driven from the
//! writer's (synchronous) thread on a single-threaded tokio runtime of its own. A host that
//! does not answer is left for the next one in the list.

use crate::bulk::excerpt;
use crate::error::ElasticsearchError;
use crate::failure::retriable_request;
use crate::sink::Settings;

/// Why a bulk request did not get a bulk response.
pub(crate) enum SendError {
    /// No answer (connection refused or broken, timeout) or a status that may pass (429, 502,
    /// 503, 504): worth retrying.
    Transient(String),
    /// Refused for a reason a retry cannot change.
    Refused(Box<ElasticsearchError>),
}

pub(crate) struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    /// `<host>/_bulk` for each host.
    bulk_urls: Vec<String>,
    next: usize,
    auth: Option<(String, String)>,
}

impl Client {
    /// A client for `settings`' hosts. Does not connect.
    ///
    /// # Errors
    /// [`ElasticsearchError::Config`] for an unreadable CA file or a runtime that cannot start.
    pub(crate) fn open<T>(settings: &Settings<T>) -> Result<Client, ElasticsearchError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                ElasticsearchError::Config(format!("cannot start the HTTP client's runtime: {e}"))
            })?;
        let mut b = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .pool_max_idle_per_host(2);
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                ElasticsearchError::Config(format!(
                    "cannot read the CA file {}: {e}; point the CA option at a PEM file with the cluster's CA certificate",
                    path.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ElasticsearchError::Config(format!(
                    "{} holds no PEM certificate ({e}); it must be the cluster's CA certificate in PEM",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(ElasticsearchError::Config(format!(
                    "{} holds no PEM certificate; it must be the cluster's CA certificate in PEM",
                    path.display()
                )));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b.build().map_err(|e| {
            ElasticsearchError::Config(format!("cannot build the HTTP client: {e}"))
        })?;
        Ok(Client {
            runtime,
            http,
            bulk_urls: settings
                .hosts
                .iter()
                .map(|h| format!("{}/_bulk", h.trim_end_matches('/')))
                .collect(),
            next: 0,
            auth: settings
                .username
                .clone()
                .map(|u| (u, settings.password.clone().unwrap_or_default())),
        })
    }

    /// Sends one bulk request to the next host and returns the response body.
    pub(crate) fn bulk(&mut self, body: Vec<u8>) -> Result<Vec<u8>, SendError> {
        let url = self.bulk_urls[self.next % self.bulk_urls.len()].clone();
        let mut req = self
            .http
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .body(body);
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p));
        }
        let result = self.runtime.block_on(async move {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        });
        let (status, bytes) = match result {
            Ok(r) => r,
            Err(e) => {
                // Leave this host for the next one.
                self.next = self.next.wrapping_add(1);
                return Err(SendError::Transient(format!("{url}: {}", error_chain(&e))));
            }
        };
        if (200..300).contains(&status) {
            return Ok(bytes.to_vec());
        }
        if retriable_request(status) {
            self.next = self.next.wrapping_add(1);
            return Err(SendError::Transient(format!(
                "{url} answered HTTP {status}: {}",
                excerpt(&bytes)
            )));
        }
        let hint = match status {
            401 => {
                "the cluster needs credentials or refused them: set the username and password (SQL 'username' / 'password', .basic_auth(..))"
            }
            403 => "the user may not write to this index: grant it the index and bulk privileges",
            413 => {
                "the request is larger than the cluster's http.max_content_length: lower the bulk size (sink.bulk-flush.max-size / .max_size_bytes(..))"
            }
            _ => "check the hosts (each must be the cluster's REST endpoint) and the cluster's log",
        };
        Err(SendError::Refused(Box::new(ElasticsearchError::Refused {
            url,
            status,
            reason: excerpt(&bytes),
            hint,
        })))
    }
}

/// An error with its sources (reqwest's top level says little: "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
