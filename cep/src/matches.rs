//! `Match`: the events of a (partial) match grouped by pattern part (Flink's
//! `Map<String, List<T>>`).

use serde::{Deserialize, Serialize};

/// The events of a match, per pattern part, parts in the order of their first event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match<T> {
    parts: Vec<(String, Vec<T>)>,
}

impl<T> Match<T> {
    /// Groups `(part name, event)` pairs given in match order.
    pub(crate) fn from_events(events: impl IntoIterator<Item = (String, T)>) -> Self {
        let mut parts: Vec<(String, Vec<T>)> = Vec::new();
        for (name, event) in events {
            match parts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, list)) => list.push(event),
                None => parts.push((name, vec![event])),
            }
        }
        Match { parts }
    }

    /// The events taken by part `name` (Flink's `match.get(name)`); `None` when the part took
    /// none (an optional part, for example).
    pub fn get(&self, name: &str) -> Option<&[T]> {
        self.parts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first event of part `name`.
    pub fn first(&self, name: &str) -> Option<&T> {
        self.get(name).and_then(|v| v.first())
    }

    /// The parts and their events, in match order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[T])> {
        self.parts.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// All events in match order.
    pub fn events(&self) -> impl Iterator<Item = &T> {
        self.parts.iter().flat_map(|(_, v)| v.iter())
    }

    /// True when no event matched (a timed-out match has at least one).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}
