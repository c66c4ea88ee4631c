//! The writer of one parallel instance: a bulk request filled record by record and sent when
//! it holds `max_actions` actions or `max_size_bytes` bytes, when its oldest action is
//! `flush_interval` old, and on every `flush` (before each checkpoint barrier, at the end of
//! input); retried with backoff; refused actions go to the failure handler.

use crate::bulk::{self, Outcome, Pending};
use crate::client::{Client, SendError};
use crate::error::ElasticsearchError;
use crate::failure::{FailureHandler, retriable_item};
use crate::metrics::WriterMetrics;
use crate::sink::{OnMalformed, Settings};
use fjord::sinks::SinkWriter;
use fjord::types::Timestamp;
use fjord::{BoxError, RuntimeContext};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct ElasticsearchWriter<T> {
    settings: Arc<Settings<T>>,
    client: Client,
    buffer: Vec<Pending>,
    bytes: usize,
    /// When the first action of the current request was buffered.
    oldest: Option<Instant>,
    metrics: WriterMetrics,
    subtask: String,
}

impl<T> ElasticsearchWriter<T> {
    pub(crate) fn open(
        settings: Arc<Settings<T>>,
        ctx: &RuntimeContext,
    ) -> Result<Self, ElasticsearchError> {
        Ok(ElasticsearchWriter {
            client: Client::open(&settings)?,
            buffer: Vec::new(),
            bytes: 0,
            oldest: None,
            metrics: WriterMetrics::new(ctx),
            subtask: ctx.task_name_with_subtasks(),
            settings,
        })
    }

    /// Sends every buffered action and waits until each is accepted, dropped or fails the job.
    fn send_all(&mut self) -> Result<(), ElasticsearchError> {
        let items = std::mem::take(&mut self.buffer);
        self.bytes = 0;
        self.oldest = None;
        if items.is_empty() {
            return Ok(());
        }
        self.send(items)
    }

    /// The wait before retry `retry`, or `None` when the handler and the backoff allow none.
    fn delay(&self, retry: u32) -> Option<Duration> {
        let backoff = &self.settings.backoff;
        match self.settings.failure_handler {
            FailureHandler::Retry => Some(backoff.unbounded_delay(retry)),
            _ => backoff.delay_before(retry),
        }
    }

    fn send(&mut self, mut items: Vec<Pending>) -> Result<(), ElasticsearchError> {
        let mut request_retries = 0u32;
        while !items.is_empty() {
            let body = bulk::body(&items);
            self.metrics.requests.inc();
            self.metrics.bytes.add(body.len() as u64);
            let response = match self.client.bulk(body) {
                Ok(r) => r,
                Err(SendError::Refused(e)) => return Err(*e),
                Err(SendError::Transient(reason)) => {
                    request_retries += 1;
                    let Some(d) = self.delay(request_retries) else {
                        return Err(ElasticsearchError::Request {
                            hosts: self.settings.hosts.join(","),
                            actions: items.len(),
                            attempts: request_retries,
                            reason,
                        });
                    };
                    tracing::warn!(sink = %self.subtask, "bulk request of {} actions failed ({reason}); retry {request_retries} in {d:?}", items.len());
                    self.metrics.retries.inc();
                    std::thread::sleep(d);
                    continue;
                }
            };
            let outcomes = bulk::outcomes(&response, items.len()).map_err(|reason| {
                ElasticsearchError::Request {
                    hosts: self.settings.hosts.join(","),
                    actions: items.len(),
                    attempts: request_retries + 1,
                    reason,
                }
            })?;
            request_retries = 0;
            let mut again = Vec::new();
            let mut wait = Duration::ZERO;
            for (mut item, outcome) in items.into_iter().zip(outcomes) {
                let (status, kind, reason) = match outcome {
                    Outcome::Ok => {
                        self.metrics.actions.inc();
                        if item.last_of_record {
                            self.metrics.records.inc();
                        }
                        continue;
                    }
                    Outcome::Failed {
                        status,
                        kind,
                        reason,
                    } => (status, kind, reason),
                };
                if retriable_item(status)
                    && let Some(d) = self.delay(item.retries + 1)
                {
                    item.retries += 1;
                    wait = wait.max(d);
                    self.metrics.retries.inc();
                    again.push(item);
                    continue;
                }
                self.metrics.failed.inc();
                let error = ElasticsearchError::ItemFailed {
                    action: item.action,
                    index: item.index.clone(),
                    id: item.id_text(),
                    status,
                    kind,
                    reason,
                };
                match self.settings.failure_handler {
                    FailureHandler::Drop => {
                        self.metrics.dropped.inc();
                        tracing::warn!(sink = %self.subtask, "dropping an action: {error}");
                    }
                    FailureHandler::Fail | FailureHandler::Retry => return Err(error),
                }
            }
            if !again.is_empty() {
                tracing::debug!(sink = %self.subtask, "{} actions rejected for load; sending them again in {wait:?}", again.len());
                std::thread::sleep(wait);
            }
            items = again;
        }
        Ok(())
    }
}

impl<T: Send + 'static> SinkWriter<T> for ElasticsearchWriter<T> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let actions = self.settings.emitter.emit(&value).and_then(|actions| {
            for a in &actions {
                a.check()?;
            }
            Ok(actions)
        });
        let actions = match actions {
            Ok(a) => a,
            Err(problem) => match self.settings.on_malformed {
                OnMalformed::Fail => return Err(Box::new(ElasticsearchError::Malformed(problem))),
                OnMalformed::Skip => {
                    tracing::warn!(sink = %self.subtask, "skipping a malformed record: {problem}");
                    self.metrics.skipped.inc();
                    return Ok(());
                }
            },
        };
        let n = actions.len();
        for (i, a) in actions.iter().enumerate() {
            let p = Pending::new(a, i + 1 == n);
            self.bytes += p.lines.len();
            self.buffer.push(p);
        }
        if n == 0 {
            return Ok(());
        }
        let oldest = *self.oldest.get_or_insert_with(Instant::now);
        let s = &self.settings;
        if self.buffer.len() >= s.max_actions
            || self.bytes >= s.max_size_bytes
            || s.flush_interval.is_some_and(|i| oldest.elapsed() >= i)
        {
            self.send_all()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        Ok(self.send_all()?)
    }
}
