//! The cluster as this client sees it: brokers, a connection per broker, topic metadata
//! (partitions and leaders), coordinators, and the bounded retry loop around them.

use super::config::Settings;
use super::connection::{Connection, api_name};
use super::{Result, TopicPartition};
use crate::error::{KafkaError, codes};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, MetadataRequest, MetadataResponse, TopicName,
    metadata_request::MetadataRequestTopic,
};
use kafka_protocol::protocol::{Request, StrBytes};
use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// Versions of Metadata this client speaks (v1+: null topics = all; it reads names, not ids).
const METADATA_VERSIONS: RangeInclusive<i16> = 1..=12;
/// FindCoordinator (v4+ batches keys).
const FIND_COORDINATOR_VERSIONS: RangeInclusive<i16> = 1..=6;

/// How often an unknown topic is looked up again before the error is returned.
const UNKNOWN_TOPIC_RETRIES: u32 = 3;

/// Which broker a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    /// Any broker (metadata, admin requests).
    Any,
    /// A broker by id.
    Id(i32),
}

/// A request written, its response not read yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InFlight {
    pub broker: i32,
    connection: u64,
    correlation_id: i32,
    version: i16,
    /// How long the broker may hold the request (fetch `max_wait`), beyond the timeout.
    extra_wait: Duration,
}

/// What is known about one topic.
#[derive(Debug, Clone)]
pub(crate) struct TopicInfo {
    /// Leader per partition index (`None`: no leader now).
    pub leaders: Vec<Option<i32>>,
}

/// A broker that answers ApiVersions and then closes the connection at the first other request
/// is, most often, a SASL listener waiting for authentication: say so.
fn explain_first_failure(e: KafkaError, without_sasl: bool) -> KafkaError {
    match e {
        KafkaError::Io { broker, source }
            if without_sasl
                && matches!(
                    source.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
        {
            KafkaError::Io {
                broker,
                source: std::io::Error::new(
                    source.kind(),
                    format!(
                        "{source}: the broker closed the connection after ApiVersions; if the \
                         listener requires SASL authentication, set security.protocol=SASL_SSL \
                         (or SASL_PLAINTEXT), sasl.mechanism and sasl.jaas.config"
                    ),
                ),
            }
        }
        e => e,
    }
}

/// Kind of coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CoordinatorKind {
    Group = 0,
    Transaction = 1,
}

/// Brokers, connections and metadata.
pub(crate) struct Cluster {
    pub settings: Settings,
    brokers: BTreeMap<i32, String>,
    connections: HashMap<i32, Connection>,
    /// A connection not tied to a known broker id (the bootstrap one) or the last used one.
    any: Option<Connection>,
    topics: HashMap<String, TopicInfo>,
    coordinators: HashMap<(CoordinatorKind, String), i32>,
}

impl Cluster {
    /// Connects to the first bootstrap server that answers and reads the broker list.
    pub fn connect(settings: Settings) -> Result<Self> {
        let mut cluster = Cluster {
            settings,
            brokers: BTreeMap::new(),
            connections: HashMap::new(),
            any: None,
            topics: HashMap::new(),
            coordinators: HashMap::new(),
        };
        cluster.any_connection()?;
        let without_sasl = cluster.settings.sasl.is_none();
        cluster
            .fetch_metadata(Some(&[]))
            .map_err(|e| explain_first_failure(e, without_sasl))?;
        Ok(cluster)
    }

    fn any_connection(&mut self) -> Result<&mut Connection> {
        if self.any.is_none() {
            let mut candidates: Vec<String> = self.settings.bootstrap.clone();
            candidates.extend(self.brokers.values().cloned());
            let mut last = String::from("no server tried");
            for addr in candidates {
                match Connection::open(&addr, &self.settings) {
                    Ok(conn) => {
                        self.any = Some(conn);
                        break;
                    }
                    // Refused credentials fail the same at every broker: say so, not "unreachable".
                    Err(e @ KafkaError::Authentication { .. }) => return Err(e),
                    Err(e) => last = format!("{addr}: {e}"),
                }
            }
            if self.any.is_none() {
                return Err(KafkaError::Unreachable {
                    bootstrap: self.settings.bootstrap.join(","),
                    message: last,
                });
            }
        }
        Ok(self.any.as_mut().expect("set above"))
    }

    fn connection(&mut self, node: Node) -> Result<&mut Connection> {
        let id = match node {
            Node::Any => return self.any_connection(),
            Node::Id(id) => id,
        };
        if !self.connections.contains_key(&id) {
            let addr = match self.brokers.get(&id) {
                Some(a) => a.clone(),
                None => {
                    self.fetch_metadata(Some(&[]))?;
                    self.brokers
                        .get(&id)
                        .cloned()
                        .ok_or_else(|| KafkaError::Protocol {
                            api: "Metadata",
                            message: format!("broker id {id} is not in the cluster metadata"),
                        })?
                }
            };
            let conn = Connection::open(&addr, &self.settings)?;
            self.connections.insert(id, conn);
        }
        Ok(self.connections.get_mut(&id).expect("inserted above"))
    }

    /// Sends a request built for the negotiated version to `node`; drops the connection on an
    /// I/O error so the next call reconnects.
    pub fn send<R: Request>(
        &mut self,
        node: Node,
        versions: &RangeInclusive<i16>,
        extra_wait: Duration,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(R::Response, i16)> {
        let conn = self.connection(node)?;
        let version = conn.version::<R>(versions)?;
        let request = build(version);
        let result = conn.call(&request, version, extra_wait);
        if result.is_err() {
            // Broken or out of step (a response that does not match): start afresh.
            self.drop_connection(node);
        }
        result.map(|r| (r, version))
    }

    /// Sends a request without response (acks=0).
    pub fn send_only<R: Request>(
        &mut self,
        node: Node,
        versions: &RangeInclusive<i16>,
        build: impl FnOnce(i16) -> R,
    ) -> Result<()> {
        let conn = self.connection(node)?;
        let version = conn.version::<R>(versions)?;
        let result = conn.send_only(&build(version), version);
        if result.is_err() {
            self.drop_connection(node);
        }
        result
    }

    /// Writes a request to broker `id` without waiting for its response (pipelining); the
    /// caller must [`receive`](Self::receive) responses in the order the requests went out,
    /// and make no other call to that broker in between.
    pub fn send_request<R: Request>(
        &mut self,
        id: i32,
        versions: &RangeInclusive<i16>,
        extra_wait: Duration,
        build: impl FnOnce(i16) -> R,
    ) -> Result<InFlight> {
        let conn = self.connection(Node::Id(id))?;
        let version = conn.version::<R>(versions)?;
        let connection = conn.id();
        match conn.send_request(&build(version), version) {
            Ok(correlation_id) => Ok(InFlight {
                broker: id,
                connection,
                correlation_id,
                version,
                extra_wait,
            }),
            Err(e) => {
                self.drop_connection(Node::Id(id));
                Err(e)
            }
        }
    }

    /// The response to a request of [`send_request`](Self::send_request); an I/O error when
    /// the connection it went out on broke since.
    pub fn receive<R: Request>(&mut self, request: &InFlight) -> Result<R::Response> {
        let conn = match self.connections.get_mut(&request.broker) {
            Some(c) if c.id() == request.connection => c,
            _ => {
                return Err(KafkaError::Io {
                    broker: self
                        .brokers
                        .get(&request.broker)
                        .cloned()
                        .unwrap_or_else(|| format!("broker {}", request.broker)),
                    source: std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the connection broke with this request in flight",
                    ),
                });
            }
        };
        let result = conn.receive::<R>(request.correlation_id, request.version, request.extra_wait);
        if result.is_err() {
            self.drop_connection(Node::Id(request.broker));
        }
        result
    }

    /// Forgets a broken connection.
    pub fn drop_connection(&mut self, node: Node) {
        match node {
            Node::Any => self.any = None,
            Node::Id(id) => {
                self.connections.remove(&id);
            }
        }
    }

    /// Runs `attempt` until it succeeds, fails with a non-retriable error, or the request
    /// timeout passed (the last error is returned then). Before each retry the metadata of
    /// `topics` and the coordinators are forgotten so they are looked up again.
    pub fn retry<T>(&mut self, mut attempt: impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        let deadline = Instant::now() + self.settings.request_timeout;
        self.retry_until(deadline, &mut attempt)
    }

    /// [`retry`](Self::retry) with an explicit deadline.
    pub fn retry_until<T>(
        &mut self,
        deadline: Instant,
        attempt: &mut impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let mut backoff = self.settings.retry_backoff.max(Duration::from_millis(10));
        let mut unknown_topic = 0;
        // Bounded in count too, whatever the clock does.
        for _ in 0..1_000 {
            match attempt(self) {
                Ok(v) => return Ok(v),
                // A topic that does not exist is retried a few times only (a topic created a
                // moment ago may not be known to every broker yet), not for the whole timeout.
                Err(e)
                    if e.code() == Some(codes::UNKNOWN_TOPIC_OR_PARTITION) && {
                        unknown_topic += 1;
                        unknown_topic > UNKNOWN_TOPIC_RETRIES
                    } =>
                {
                    return Err(e);
                }
                Err(e) if e.is_retriable() && Instant::now() + backoff < deadline => {
                    tracing::debug!(error = %e, "retrying Kafka request");
                    match &e {
                        KafkaError::Broker { code, .. } => self.on_retriable_code(*code),
                        // A broker went away: its partitions may have moved.
                        _ => self.forget_metadata(),
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
        attempt(self)
    }

    fn on_retriable_code(&mut self, code: i16) {
        match code {
            codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE => self.coordinators.clear(),
            codes::CONCURRENT_TRANSACTIONS | codes::COORDINATOR_LOAD_IN_PROGRESS => {}
            _ => self.topics.clear(),
        }
    }

    /// Reads metadata for `topics` (all when `None`, brokers only when empty) and updates the
    /// broker list and the topic cache.
    pub fn fetch_metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse> {
        let topics_owned: Option<Vec<String>> = topics.map(<[String]>::to_vec);
        let (response, _) = self.send(Node::Any, &METADATA_VERSIONS, Duration::ZERO, |_| {
            let mut request = MetadataRequest::default();
            request.allow_auto_topic_creation = false;
            request.topics = topics_owned.map(|names| {
                names
                    .into_iter()
                    .map(|n| {
                        let mut t = MetadataRequestTopic::default();
                        t.name = Some(TopicName(StrBytes::from_string(n)));
                        t
                    })
                    .collect()
            });
            request
        })?;
        for broker in &response.brokers {
            self.brokers.insert(
                broker.node_id.0,
                format!("{}:{}", broker.host.as_str(), broker.port),
            );
        }
        // A broker that left the cluster: forget its connection.
        let live: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
        if !live.is_empty() {
            self.connections.retain(|id, _| live.contains(id));
        }
        for topic in &response.topics {
            let Some(name) = &topic.name else { continue };
            let name = name.as_str().to_string();
            if topic.error_code != 0 {
                self.topics.remove(&name);
                continue;
            }
            let count = topic
                .partitions
                .iter()
                .map(|p| p.partition_index + 1)
                .max()
                .unwrap_or(0)
                .max(0) as usize;
            let mut leaders = vec![None; count];
            for p in &topic.partitions {
                let leader = (p.error_code == 0 || p.leader_id.0 >= 0)
                    .then_some(p.leader_id.0)
                    .filter(|id| *id >= 0);
                leaders[p.partition_index as usize] = leader;
            }
            self.topics.insert(name, TopicInfo { leaders });
        }
        Ok(response)
    }

    /// The cached metadata of a topic, read when missing. Unknown topic: error.
    pub fn topic(&mut self, api: &'static str, topic: &str) -> Result<&TopicInfo> {
        if !self.topics.contains_key(topic) {
            let response = self.fetch_metadata(Some(&[topic.to_string()]))?;
            let code = response
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
                .map_or(codes::UNKNOWN_TOPIC_OR_PARTITION, |t| t.error_code);
            if code != 0 {
                return Err(KafkaError::broker(api, topic, code));
            }
        }
        Ok(self.topics.get(topic).expect("cached above"))
    }

    /// The leader of a partition (metadata read when not cached).
    pub fn leader(&mut self, api: &'static str, tp: &TopicPartition) -> Result<i32> {
        let info = self.topic(api, &tp.topic)?;
        match info
            .leaders
            .get(usize::try_from(tp.partition).unwrap_or(usize::MAX))
        {
            None => Err(KafkaError::broker(
                api,
                tp.to_string(),
                codes::UNKNOWN_TOPIC_OR_PARTITION,
            )),
            Some(None) => {
                let e = KafkaError::broker(api, tp.to_string(), codes::LEADER_NOT_AVAILABLE);
                self.topics.remove(&tp.topic);
                Err(e)
            }
            Some(Some(id)) => Ok(*id),
        }
    }

    /// Forgets all topic metadata and coordinators (after a broker went away).
    pub fn forget_metadata(&mut self) {
        self.topics.clear();
        self.coordinators.clear();
    }

    /// Forgets a topic's metadata (after NOT_LEADER and the like).
    pub fn invalidate(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    /// Groups partitions by their leader.
    pub fn by_leader<'a, V>(
        &mut self,
        api: &'static str,
        items: impl IntoIterator<Item = (&'a TopicPartition, V)>,
    ) -> Result<BTreeMap<i32, Vec<(&'a TopicPartition, V)>>> {
        let mut out: BTreeMap<i32, Vec<_>> = BTreeMap::new();
        for (tp, v) in items {
            let leader = self.leader(api, tp)?;
            out.entry(leader).or_default().push((tp, v));
        }
        Ok(out)
    }

    /// The coordinator of a group or transactional id (looked up once, cached until an error
    /// says it moved).
    pub fn coordinator(&mut self, kind: CoordinatorKind, key: &str) -> Result<i32> {
        if let Some(id) = self.coordinators.get(&(kind, key.to_string())) {
            return Ok(*id);
        }
        let key_owned = key.to_string();
        let (response, version) =
            self.send(Node::Any, &FIND_COORDINATOR_VERSIONS, Duration::ZERO, |v| {
                let mut request = FindCoordinatorRequest::default();
                request.key_type = kind as i8;
                if v >= 4 {
                    request.coordinator_keys = vec![StrBytes::from_string(key_owned)];
                } else {
                    request.key = StrBytes::from_string(key_owned);
                }
                request
            })?;
        let (code, node, host, port) = if version >= 4 {
            let c = response
                .coordinators
                .first()
                .ok_or_else(|| KafkaError::Protocol {
                    api: "FindCoordinator",
                    message: "empty coordinator list in the response".into(),
                })?;
            (c.error_code, c.node_id, c.host.clone(), c.port)
        } else {
            (
                response.error_code,
                response.node_id,
                response.host.clone(),
                response.port,
            )
        };
        if code != 0 {
            return Err(KafkaError::broker("FindCoordinator", key, code));
        }
        let BrokerId(id) = node;
        self.brokers
            .insert(id, format!("{}:{}", host.as_str(), port));
        self.coordinators.insert((kind, key.to_string()), id);
        Ok(id)
    }

    /// Forgets a coordinator (after NOT_COORDINATOR and the like).
    pub fn invalidate_coordinator(&mut self, kind: CoordinatorKind, key: &str) {
        self.coordinators.remove(&(kind, key.to_string()));
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Maps a per-partition error code to a result, invalidating metadata on leader errors.
pub(crate) fn check_partition(
    cluster: &mut Cluster,
    key: i16,
    tp: &TopicPartition,
    code: i16,
) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    if matches!(
        code,
        codes::NOT_LEADER_OR_FOLLOWER
            | codes::LEADER_NOT_AVAILABLE
            | codes::UNKNOWN_TOPIC_OR_PARTITION
            | codes::FENCED_LEADER_EPOCH
            | codes::UNKNOWN_LEADER_EPOCH
    ) {
        cluster.invalidate(&tp.topic);
    }
    Err(KafkaError::broker(api_name(key), tp.to_string(), code))
}
