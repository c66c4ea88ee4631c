//! One STOMP connection, driven from synchronous code.
//!
//! Fjord's readers and writers are synchronous and run on their task's thread. A session
//! owns a tokio runtime with one worker thread, on which the client's reading and heart-beat
//! tasks run between the reader's or writer's calls, and `block_on` for the calls themselves.
//! The session must not be used from inside another tokio runtime.

use crate::address::Address;
use crate::client::{Client, ClientOptions, Event, details};
use crate::error::ActiveMqError;
use crate::frame::Frame;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub(crate) struct Session {
    runtime: tokio::runtime::Runtime,
    client: Client,
    /// Events that arrived while [`request`](Self::request) waited for its receipt.
    early: VecDeque<Event>,
    next_receipt: u64,
    pub(crate) address: Address,
}

impl Session {
    /// Connects to `address` and logs in.
    ///
    /// # Errors
    /// [`ActiveMqError::Connect`] naming the address.
    pub(crate) fn open(address: &Address, options: &ClientOptions) -> Result<Self, ActiveMqError> {
        let fail = |reason: String| ActiveMqError::Connect {
            address: address.shown.clone(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fjord-activemq")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the client's runtime: {e}")))?;
        let client = runtime
            .block_on(Client::connect(address, options))
            .map_err(fail)?;
        tracing::debug!(server = %client.server, address = %address.shown, "connected to ActiveMQ");
        Ok(Session {
            runtime,
            client,
            early: VecDeque::new(),
            next_receipt: 0,
            address: address.clone(),
        })
    }

    /// A receipt id not used before on this session.
    pub(crate) fn receipt_id(&mut self) -> String {
        self.next_receipt += 1;
        self.next_receipt.to_string()
    }

    /// Writes `frames`.
    ///
    /// # Errors
    /// [`ActiveMqError::Connection`] if the socket fails.
    pub(crate) fn send(&mut self, frames: &[Frame], operation: &str) -> Result<(), ActiveMqError> {
        match self.runtime.block_on(self.client.send(frames)) {
            Ok(()) => Ok(()),
            // A broker that refuses a frame sends an ERROR frame and closes the connection,
            // often before the write finished: the ERROR frame says why, the broken pipe
            // does not.
            Err(e) => Err(self
                .why_closed(operation)
                .unwrap_or_else(|| self.error(operation, e))),
        }
    }

    /// The broker's `ERROR` frame among the events that arrive within a second, if any.
    fn why_closed(&mut self, operation: &str) -> Option<ActiveMqError> {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left)? {
                event @ Event::Error(_) => return Some(self.failure(event, operation)),
                Event::Closed(_) => return None,
                Event::Message(_) | Event::Receipt(_) if left.is_zero() => return None,
                Event::Message(_) | Event::Receipt(_) => {}
            }
        }
    }

    /// The next event, waiting up to `wait`; `None` if none came.
    pub(crate) fn next_event(&mut self, wait: Duration) -> Option<Event> {
        if let Some(e) = self.early.pop_front() {
            return Some(e);
        }
        let events = &mut self.client.events;
        if wait.is_zero() {
            return match events.try_recv() {
                Ok(e) => Some(e),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => None,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    Some(Event::Closed("the connection's reader stopped".into()))
                }
            };
        }
        self.runtime.block_on(async {
            match tokio::time::timeout(wait, events.recv()).await {
                Ok(Some(e)) => Some(e),
                Ok(None) => Some(Event::Closed("the connection's reader stopped".into())),
                Err(_) => None,
            }
        })
    }

    /// Sends `frame` with a `receipt` header and waits (up to `timeout`) for its receipt;
    /// messages arriving meanwhile are kept for [`next_event`](Self::next_event).
    ///
    /// # Errors
    /// The broker's `ERROR` frame, a closed connection or no receipt in time.
    pub(crate) fn request(
        &mut self,
        frame: Frame,
        operation: &str,
        timeout: Duration,
    ) -> Result<(), ActiveMqError> {
        let id = self.receipt_id();
        self.send(&[frame.header("receipt", id.clone())], operation)?;
        let deadline = Instant::now() + timeout;
        let mut kept = VecDeque::new();
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(self.error(operation, format!("no receipt within {timeout:?}")));
            }
            let event = match self.client_event(left) {
                Some(e) => e,
                None => continue,
            };
            match event {
                Event::Receipt(r) if r == id => break Ok(()),
                Event::Receipt(_) | Event::Message(_) => kept.push_back(event),
                other => break Err(self.failure(other, operation)),
            }
        };
        self.early.extend(kept);
        result
    }

    fn client_event(&mut self, wait: Duration) -> Option<Event> {
        let events = &mut self.client.events;
        self.runtime.block_on(async {
            match tokio::time::timeout(wait, events.recv()).await {
                Ok(Some(e)) => Some(e),
                Ok(None) => Some(Event::Closed("the connection's reader stopped".into())),
                Err(_) => None,
            }
        })
    }

    /// The error an `ERROR` or `Closed` event means for `operation` (other events: a
    /// protocol violation).
    pub(crate) fn failure(&self, event: Event, operation: &str) -> ActiveMqError {
        match event {
            Event::Error(frame) => ActiveMqError::Broker {
                address: self.address.shown.clone(),
                operation: operation.to_string(),
                message: frame.get("message").unwrap_or("(no message)").to_string(),
                details: details(&frame),
            },
            Event::Closed(reason) => self.error(operation, reason),
            other => self.error(operation, format!("unexpected {other:?}")),
        }
    }

    /// A connection error of `operation` on this session.
    pub(crate) fn error(&self, operation: &str, reason: impl ToString) -> ActiveMqError {
        ActiveMqError::Connection {
            address: self.address.shown.clone(),
            operation: operation.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Disconnects (best effort, a few seconds at most); unacknowledged messages go back to
    /// their queue.
    pub(crate) fn close(&self) {
        let client = &self.client;
        // `close` is best effort itself; a timeout only means the socket is dropped unclosed.
        let _ = self
            .runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), client.close()).await });
    }
}
