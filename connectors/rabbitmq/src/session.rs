//! One AMQP connection and channel, driven from synchronous code.
//!
//! lapin is asynchronous; Fjord's readers and writers are synchronous and run on their task's
//! thread. Each session therefore owns a tokio runtime with one worker thread, on which lapin's
//! I/O loop and heartbeats run between the reader's or writer's calls, and `block_on` for the
//! calls themselves. The session must not be used from inside another tokio runtime.

use crate::error::RabbitMqError;
use lapin::{Channel, Connection, ConnectionProperties};
use std::future::Future;
use std::time::Duration;

pub(crate) struct Session {
    runtime: tokio::runtime::Runtime,
    connection: Connection,
    pub(crate) channel: Channel,
    /// The broker's URL without password, for messages.
    pub(crate) url: String,
}

impl Session {
    /// Connects to `uri` and opens a channel, within `timeout`.
    ///
    /// # Errors
    /// [`RabbitMqError::Connect`] naming `shown_url`.
    pub(crate) fn open(
        uri: &str,
        shown_url: &str,
        timeout: Duration,
    ) -> Result<Self, RabbitMqError> {
        let fail = |reason: String| RabbitMqError::Connect {
            url: shown_url.to_string(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fjord-rabbitmq")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the client's runtime: {e}")))?;
        let opened = runtime.block_on(async {
            tokio::time::timeout(timeout, async {
                let connection = Connection::connect(uri, ConnectionProperties::default()).await?;
                let channel = connection.create_channel().await?;
                Ok::<_, lapin::Error>((connection, channel))
            })
            .await
        });
        let (connection, channel) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Err(_) => return Err(fail(format!("no connection within {timeout:?}"))),
        };
        Ok(Session {
            runtime,
            connection,
            channel,
            url: shown_url.to_string(),
        })
    }

    /// Runs `future` to completion on the session's runtime.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// An error of `operation` on this session.
    pub(crate) fn error(
        &self,
        operation: impl Into<String>,
        reason: impl ToString,
    ) -> RabbitMqError {
        RabbitMqError::Channel {
            url: self.url.clone(),
            operation: operation.into(),
            reason: reason.to_string(),
        }
    }

    /// Closes the connection (best effort, a few seconds at most); unacknowledged deliveries go
    /// back to their queues.
    pub(crate) fn close(&self) {
        let connection = &self.connection;
        // Best effort: sinks waited for their confirms (flush) before, and unacknowledged
        // deliveries go back to their queues however the connection ends.
        let _ = self.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(5),
                connection.close(200, "closed by Fjord".into()),
            )
            .await
        });
    }
}
