//! RabbitMQ connector for Fjord (AMQP 0.9.1 through `lapin`), with the semantics of Flink's
//! `flink-connector-rabbitmq`.
//!
//! - [`source`]: [`RmqSource`](source::RmqSource), Flink's `RMQSource`: consumes a queue,
//!   acknowledges deliveries only when the checkpoint covering them completes, and with
//!   correlation ids drops redelivered messages it already processed: exactly-once with a
//!   checkpointed job. Depends on `acks`, `session`.
//! - [`sink`]: [`RmqSink`](sink::RmqSink), Flink's `RMQSink` with publisher confirms: waits for
//!   every confirm before each checkpoint barrier (at-least-once). Depends on `session`.
//! - `acks`: the source's bookkeeping of delivery tags and correlation ids per checkpoint (a
//!   pure state machine, unit-tested without a broker).
//! - `session`: one connection and channel on a small tokio runtime of its own, so the
//!   synchronous reader and writer can drive lapin's async API.
//! - [`error`]: the crate's error enum.

pub mod error;
pub mod sink;
pub mod source;

mod acks;
mod session;

pub use error::RabbitMqError;
pub use sink::{RmqSink, RmqSinkBuilder};
pub use source::{OnMalformed, RmqSource, RmqSourceBuilder};

/// `url` with the password (between `:` and `@` of the authority) replaced by `***`.
pub(crate) fn without_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end], &rest[at..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            super::without_password("amqp://guest:guest@h:5672/%2f"),
            "amqp://guest:***@h:5672/%2f"
        );
        assert_eq!(super::without_password("amqp://h/v"), "amqp://h/v");
    }
}
