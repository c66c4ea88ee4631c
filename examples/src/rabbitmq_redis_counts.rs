//! Orders per customer, from a RabbitMQ queue into a Redis hash, with exactly-once results.
//!
//! ```text
//! fjord run rabbitmq-redis-counts [--amqp-uri amqp://guest:guest@localhost:5672/%2f]
//!     [--queue orders] [--redis-url redis://localhost:6379/0] [--hash order-counts]
//! ```
//!
//! Every message of the queue is one order whose body is the customer's name (UTF-8) and whose
//! correlation id is unique. The source reads them exactly once (acknowledged when their
//! checkpoint completes, redeliveries dropped by correlation id), a keyed running count counts
//! orders per customer, and the Redis sink writes `HSET <hash> <customer> <count>`. HSET is
//! idempotent and the count comes from checkpointed state, so after a failure the hash ends as
//! a failure-free run leaves it. Needs checkpointing (the manifest sets it). Runs until stopped.

use fjord::{FjordError, JobArgs, Result, StreamExecutionEnvironment};
use fjord_rabbitmq::RmqSource;
use fjord_redis::{RedisSink, RedisWrite};

/// Builds the job. Operators have stable uids (`orders`, `counter`, `redis-sink`).
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let uri = args
        .get("amqp-uri")
        .unwrap_or("amqp://guest:guest@localhost:5672/%2f");
    let queue = args.get("queue").unwrap_or("orders");
    let redis_url = args.get("redis-url").unwrap_or("redis://localhost:6379/0");
    let hash = args.get("hash").unwrap_or("order-counts").to_string();
    let bad = |e: &dyn std::fmt::Display| FjordError::BadArguments(e.to_string());
    let source = RmqSource::builder()
        .uri(uri)
        .queue(queue)
        .uses_correlation_id(true)
        .deserializer(|body: &[u8]| {
            String::from_utf8(body.to_vec()).map_err(|e| format!("the customer is not UTF-8: {e}"))
        })
        .build()
        .map_err(|e| bad(&e))?;
    let sink = RedisSink::builder()
        .url(redis_url)
        .mapper(move |(customer, count): &(String, u64)| {
            Ok(RedisWrite::hset(
                hash.as_str(),
                customer.as_str(),
                count.to_string(),
            ))
        })
        .build()
        .map_err(|e| bad(&e))?;
    env.from_source(source, "Source: RabbitMQ orders")
        .uid("orders")
        .map(|customer: String| (customer, 1u64))
        .key_by(|(customer, _): &(String, u64)| customer.clone())
        .sum::<1>()
        .name("counter")
        .uid("counter")
        .sink_to(sink, "Sink: Redis order counts")
        .uid("redis-sink");
    Ok(())
}
