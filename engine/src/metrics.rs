//! Operator metrics: named counters and gauges registered per operator and subtask.
//!
//! The small counter API the windowing and state code needs (for example Flink's
//! `numLateRecordsDropped`), and connectors' metrics. Like Flink's, a metric can sit in
//! [`MetricGroup`]s, some of them key/value groups (`topic` = `orders`): its identifier is
//! the group path joined with dots (`KafkaSourceReader.topic.orders.partition.0.records`),
//! and the Prometheus export ([`MetricRegistry::samples`]) turns key/value groups into labels.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count, cheap to increment from the task thread.
#[derive(Clone, Default, Debug)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (Flink's `Gauge`), set from the task thread.
#[derive(Clone, Default, Debug)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One level of a metric's group path (Flink's `MetricGroup.addGroup`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupPart {
    /// A plain group (`KafkaSourceReader`): part of the exported metric's name.
    Name(String),
    /// A key/value group (`topic` = `orders`): the key is part of the exported name, the value
    /// a label.
    KeyValue(String, String),
}

/// A metric's name within its operator subtask: its group path and its own name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricName {
    /// The groups, outermost first.
    pub groups: Vec<GroupPart>,
    /// The metric's own name (`records`).
    pub name: String,
}

impl MetricName {
    /// A metric in no group.
    pub fn plain(name: &str) -> Self {
        MetricName {
            groups: Vec::new(),
            name: name.to_string(),
        }
    }

    /// Flink's metric identifier: the groups (`key.value` for key/value groups) and the name,
    /// joined with dots.
    pub fn identifier(&self) -> String {
        let mut out = String::new();
        for g in &self.groups {
            match g {
                GroupPart::Name(n) => out.push_str(n),
                GroupPart::KeyValue(k, v) => {
                    out.push_str(k);
                    out.push('.');
                    out.push_str(v);
                }
            }
            out.push('.');
        }
        out.push_str(&self.name);
        out
    }
}

/// Whether a metric counts up or goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A [`Counter`].
    Counter,
    /// A [`Gauge`].
    Gauge,
}

/// The current value of one metric, for exporters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricSample {
    /// The operator's name (the scope without the subtask suffix).
    pub operator: String,
    /// The zero-based subtask index (0 when the scope names none).
    pub subtask: usize,
    /// Its name and groups.
    pub metric: MetricName,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The value.
    pub value: u64,
}

/// Splits a scope `"operator (i/p)"` into the operator and the zero-based subtask (the whole
/// scope and 0 when it has no such suffix).
pub fn split_scope(scope: &str) -> (&str, usize) {
    let parsed = scope.strip_suffix(')').and_then(|rest| {
        let (operator, numbers) = rest.rsplit_once(" (")?;
        let (i, _p) = numbers.split_once('/')?;
        let i: usize = i.parse().ok()?;
        Some((operator, i.checked_sub(1)?))
    });
    parsed.unwrap_or((scope, 0))
}

type Entries<M> = Arc<Mutex<Vec<(String, MetricName, M)>>>;

/// All counters and gauges of one job execution, by scope (`"operator (i/p)"`) and name.
#[derive(Clone, Default)]
pub struct MetricRegistry {
    counters: Entries<Counter>,
    gauges: Entries<Gauge>,
}

/// Returns the metric `name` of `scope` in `entries`, creating it on first use.
fn get_or_create<M: Clone + Default>(entries: &Entries<M>, scope: &str, name: &MetricName) -> M {
    let mut all = entries.lock();
    if let Some((_, _, m)) = all.iter().find(|(s, n, _)| s == scope && n == name) {
        return m.clone();
    }
    let m = M::default();
    all.push((scope.to_string(), name.clone(), m.clone()));
    m
}

/// A group of metrics of one operator subtask (Flink's `MetricGroup`): metrics created
/// through it carry its group path.
#[derive(Clone, Debug)]
pub struct MetricGroup {
    registry: MetricRegistry,
    scope: String,
    groups: Vec<GroupPart>,
}

impl MetricGroup {
    /// A subgroup named `name` (Flink's `addGroup(name)`).
    pub fn add_group(&self, name: &str) -> MetricGroup {
        let mut g = self.clone();
        g.groups.push(GroupPart::Name(name.to_string()));
        g
    }

    /// A key/value subgroup (Flink's `addGroup(key, value)`): exported as the label
    /// `key="value"`.
    pub fn add_group_kv(&self, key: &str, value: &str) -> MetricGroup {
        let mut g = self.clone();
        g.groups
            .push(GroupPart::KeyValue(key.to_string(), value.to_string()));
        g
    }

    fn name(&self, name: &str) -> MetricName {
        MetricName {
            groups: self.groups.clone(),
            name: name.to_string(),
        }
    }

    /// The counter `name` in this group, created on first use.
    pub fn counter(&self, name: &str) -> Counter {
        get_or_create(&self.registry.counters, &self.scope, &self.name(name))
    }

    /// The gauge `name` in this group, created (at 0) on first use.
    pub fn gauge(&self, name: &str) -> Gauge {
        get_or_create(&self.registry.gauges, &self.scope, &self.name(name))
    }
}

impl fmt::Debug for MetricRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}

impl MetricRegistry {
    /// Returns the counter `name` of `scope`, creating it on first use.
    pub fn counter(&self, scope: &str, name: &str) -> Counter {
        get_or_create(&self.counters, scope, &MetricName::plain(name))
    }

    /// Returns the gauge `name` of `scope`, creating it (at 0) on first use.
    pub fn gauge(&self, scope: &str, name: &str) -> Gauge {
        get_or_create(&self.gauges, scope, &MetricName::plain(name))
    }

    /// The root metric group of `scope` (`"operator (i/p)"`).
    pub fn group(&self, scope: &str) -> MetricGroup {
        MetricGroup {
            registry: self.clone(),
            scope: scope.to_string(),
            groups: Vec::new(),
        }
    }

    /// Every counter and gauge with its operator, subtask, groups and value, in registration
    /// order (counters first): what exporters render.
    pub fn samples(&self) -> Vec<MetricSample> {
        let sample = |scope: &str, metric: &MetricName, kind, value| {
            let (operator, subtask) = split_scope(scope);
            MetricSample {
                operator: operator.to_string(),
                subtask,
                metric: metric.clone(),
                kind,
                value,
            }
        };
        let mut out: Vec<MetricSample> = self
            .counters
            .lock()
            .iter()
            .map(|(s, n, c)| sample(s, n, MetricKind::Counter, c.get()))
            .collect();
        out.extend(
            self.gauges
                .lock()
                .iter()
                .map(|(s, n, g)| sample(s, n, MetricKind::Gauge, g.get())),
        );
        out
    }

    /// Every counter and gauge as `"scope.name" -> value`.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let mut all: BTreeMap<String, u64> = self
            .counters
            .lock()
            .iter()
            .map(|(s, n, c)| (format!("{s}.{}", n.identifier()), c.get()))
            .collect();
        all.extend(
            self.gauges
                .lock()
                .iter()
                .map(|(s, n, g)| (format!("{s}.{}", n.identifier()), g.get())),
        );
        all
    }

    /// The sum of counter `name` over all subtasks of the operator named `operator`.
    pub fn total(&self, operator: &str, name: &str) -> u64 {
        let prefix = format!("{operator} (");
        self.counters
            .lock()
            .iter()
            .filter(|(s, n, _)| n.identifier() == name && s.starts_with(&prefix))
            .map(|(_, _, c)| c.get())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_go_up_and_down_and_show_beside_counters() {
        let registry = MetricRegistry::default();
        registry.counter("src (1/1)", "records").add(3);
        let lag = registry.gauge("src (1/1)", "lag");
        lag.set(10);
        lag.set(4);
        assert_eq!(
            registry.gauge("src (1/1)", "lag").get(),
            4,
            "one gauge per name"
        );
        let snapshot = registry.snapshot();
        assert_eq!(snapshot["src (1/1).records"], 3);
        assert_eq!(snapshot["src (1/1).lag"], 4);
    }

    #[test]
    fn groups_make_flinks_identifier_and_samples_keep_their_structure() {
        let registry = MetricRegistry::default();
        let partition = registry
            .group("Kafka Source (2/3)")
            .add_group("KafkaSourceReader")
            .add_group_kv("topic", "orders.eu")
            .add_group_kv("partition", "4");
        partition.counter("records").add(7);
        partition.gauge("lag").set(3);
        // The same metric through another group handle.
        registry
            .group("Kafka Source (2/3)")
            .add_group("KafkaSourceReader")
            .add_group_kv("topic", "orders.eu")
            .add_group_kv("partition", "4")
            .counter("records")
            .inc();
        let snapshot = registry.snapshot();
        assert_eq!(
            snapshot["Kafka Source (2/3).KafkaSourceReader.topic.orders.eu.partition.4.records"],
            8
        );
        let samples = registry.samples();
        assert_eq!(samples.len(), 2, "{samples:?}");
        let records = &samples[0];
        assert_eq!(
            (records.operator.as_str(), records.subtask, records.kind),
            ("Kafka Source", 1, MetricKind::Counter)
        );
        assert_eq!(records.value, 8);
        assert_eq!(
            records.metric.groups,
            vec![
                GroupPart::Name("KafkaSourceReader".into()),
                GroupPart::KeyValue("topic".into(), "orders.eu".into()),
                GroupPart::KeyValue("partition".into(), "4".into()),
            ]
        );
        assert_eq!(samples[1].kind, MetricKind::Gauge);
        assert_eq!(samples[1].value, 3);
    }

    #[test]
    fn scopes_split_into_operator_and_zero_based_subtask() {
        assert_eq!(split_scope("Map (a) (3/4)"), ("Map (a)", 2));
        assert_eq!(split_scope("no subtask"), ("no subtask", 0));
        assert_eq!(split_scope("bad (x/2)"), ("bad (x/2)", 0));
    }
}
