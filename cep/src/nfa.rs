//! The NFA at run time (Flink's `NFA` and `NFAState`): the partial matches of one key and
//! the events they reference, advanced one event at a time in timestamp order.
//!
//! Flink keeps the events of all partial matches in a `SharedBuffer` (a DAG versioned with
//! Dewey numbers). Here every partial match carries its own path of event ids into one event
//! store of the key; the paths and hence the matches are the same, the sharing is not (an
//! event id is 8 bytes per path and the event itself is stored once).

use crate::compiler::{Action, Graph, StateType};
use crate::condition::ConditionContext;
use crate::error::CepError;
use crate::matches::Match;
use serde::{Deserialize, Serialize};

/// A partial match (Flink's `ComputationState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Partial {
    /// The NFA state it waits in.
    state: u32,
    /// The events taken so far: (state that took it, event id), in order.
    path: Vec<(u32, u64)>,
    /// Timestamp of the first event (the window starts here).
    start_ts: i64,
    /// Id of the first event; `None` for the start state.
    start: Option<u64>,
}

impl Partial {
    fn order(&self) -> u64 {
        self.start.unwrap_or(u64::MAX)
    }
}

/// The NFA state of one key: partial matches, matches waiting for earlier partial matches
/// (with a skip strategy), and the events they reference. Stored in keyed state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NfaState<T> {
    partial: Vec<Partial>,
    completed: Vec<Partial>,
    /// Events by id, ids increasing. Ids are given in processing order, which is timestamp
    /// order, so they order events like Flink's `EventId` (timestamp, then arrival).
    events: Vec<(u64, T)>,
    next_id: u64,
}

/// What advancing the time produced.
pub(crate) struct Advanced<T> {
    /// Matches completed by the time passing (a trailing `not_followed_by`).
    pub(crate) matches: Vec<Match<T>>,
    /// Partial matches that timed out, with the timeout timestamp (start + window).
    pub(crate) timed_out: Vec<(Match<T>, i64)>,
}

struct Ctx<'a, T> {
    graph: &'a Graph<T>,
    path: &'a [(u32, u64)],
    events: &'a [(u64, T)],
    timestamp: i64,
}

fn lookup<T>(events: &[(u64, T)], id: u64) -> &T {
    let i = events
        .binary_search_by_key(&id, |(i, _)| *i)
        .expect("a partial match references a stored event");
    &events[i].1
}

impl<T> ConditionContext<T> for Ctx<'_, T> {
    fn events_for_pattern(&self, name: &str) -> Vec<&T> {
        self.path
            .iter()
            .filter(|(s, _)| self.graph.states[*s as usize].name == name)
            .map(|(_, id)| lookup(self.events, *id))
            .collect()
    }

    fn timestamp(&self) -> i64 {
        self.timestamp
    }
}

impl<T: Clone> NfaState<T> {
    /// The state of a key that has seen nothing: only the start state.
    pub(crate) fn new<U>(graph: &Graph<U>) -> Self {
        NfaState {
            partial: vec![Partial {
                state: graph.start as u32,
                path: Vec::new(),
                start_ts: 0,
                start: None,
            }],
            completed: Vec::new(),
            events: Vec::new(),
            next_id: 0,
        }
    }

    /// Checks that a restored state fits `graph`.
    pub(crate) fn check<U>(&self, graph: &Graph<U>) -> Result<(), CepError> {
        let n = graph.states.len();
        let bad = self
            .partial
            .iter()
            .chain(&self.completed)
            .flat_map(|p| std::iter::once(p.state).chain(p.path.iter().map(|(s, _)| *s)))
            .find(|s| *s as usize >= n);
        match bad {
            Some(state) => Err(CepError::IncompatibleState {
                state: state as usize,
                states: n,
            }),
            None => Ok(()),
        }
    }

    /// True when nothing is pending: only the start state, no waiting match, no event.
    pub(crate) fn is_idle(&self) -> bool {
        self.completed.is_empty() && self.events.is_empty() && self.partial.len() <= 1
    }

    /// The number of partial matches, the start state included.
    pub fn partial_matches(&self) -> usize {
        self.partial.len()
    }

    /// The number of stored events.
    pub fn stored_events(&self) -> usize {
        self.events.len()
    }

    fn materialize(&self, graph: &Graph<T>, path: &[(u32, u64)]) -> Match<T> {
        Match::from_events(path.iter().map(|(s, id)| {
            (
                graph.states[*s as usize].name.clone(),
                lookup(&self.events, *id).clone(),
            )
        }))
    }

    /// Feeds one event (Flink's `NFA.process`); returns the matches it completed.
    pub(crate) fn process(&mut self, graph: &Graph<T>, event: T, timestamp: i64) -> Vec<Match<T>> {
        let id = self.next_id;
        self.next_id += 1;
        self.events.push((id, event));
        let mut new_partial = Vec::new();
        let mut potential = Vec::new();
        for cs in std::mem::take(&mut self.partial) {
            let next = self.compute_next_states(graph, &cs, id, timestamp);
            let mut retain = Vec::new();
            let mut discard = false;
            for n in next {
                match graph.states[n.state as usize].kind {
                    StateType::Final => potential.push(n),
                    StateType::Stop => discard = true,
                    _ => retain.push(n),
                }
            }
            if !discard {
                new_partial.extend(retain);
            }
        }
        new_partial.sort_by_key(Partial::order);
        potential.sort_by_key(Partial::order);
        let result = if graph.skip.is_skip() {
            self.emit_by_skip_strategy(graph, potential, &mut new_partial)
        } else {
            potential
                .iter()
                .map(|m| self.materialize(graph, &m.path))
                .collect()
        };
        self.partial = new_partial;
        self.collect_garbage();
        result
    }

    /// Times out partial matches whose window ended by `timestamp` (Flink's
    /// `NFA.advanceTime`): pending trailing-NOT matches complete, others time out.
    pub(crate) fn advance_time(&mut self, graph: &Graph<T>, timestamp: i64) -> Advanced<T> {
        let mut out = Advanced {
            matches: Vec::new(),
            timed_out: Vec::new(),
        };
        if graph.window <= 0 {
            return out;
        }
        let mut new_partial = Vec::new();
        let mut potential = Vec::new();
        for cs in std::mem::take(&mut self.partial) {
            let state = &graph.states[cs.state as usize];
            let timed_out = !state.start && timestamp.saturating_sub(cs.start_ts) >= graph.window;
            if !timed_out {
                new_partial.push(cs);
            } else if state.kind == StateType::Pending {
                potential.push(cs);
            } else {
                let m = self.materialize(graph, &cs.path);
                out.timed_out
                    .push((m, cs.start_ts.saturating_add(graph.window)));
            }
        }
        potential.sort_by_key(Partial::order);
        out.matches = self.emit_by_skip_strategy(graph, potential, &mut new_partial);
        self.partial = new_partial;
        self.collect_garbage();
        out
    }

    /// Flink's `processMatchesAccordingToSkipStrategy`: completed matches wait until no
    /// partial match started earlier; each emitted match prunes partial and completed
    /// matches as its skip strategy says.
    fn emit_by_skip_strategy(
        &mut self,
        graph: &Graph<T>,
        potential: Vec<Partial>,
        partial: &mut Vec<Partial>,
    ) -> Vec<Match<T>> {
        self.completed.extend(potential);
        self.completed.sort_by_key(Partial::order);
        let mut result = Vec::new();
        while let Some(earliest) = self.completed.first() {
            let earliest_partial = partial.iter().map(Partial::order).min();
            if earliest_partial.is_some_and(|p| earliest.order() > p) {
                break;
            }
            let m = self.completed.remove(0);
            let named = m
                .path
                .iter()
                .map(|(s, id)| (graph.states[*s as usize].name.as_str(), *id));
            if let Some(pruning) = graph.skip.pruning_id(named) {
                let keep = |p: &Partial| {
                    !p.start
                        .is_some_and(|start| graph.skip.should_prune(start, pruning))
                };
                partial.retain(keep);
                self.completed.retain(keep);
            }
            result.push(self.materialize(graph, &m.path));
        }
        result
    }

    /// Flink's `computeNextStates`: follows PROCEED edges whose condition holds and applies
    /// every TAKE and IGNORE edge that accepts the event.
    fn compute_next_states(
        &self,
        graph: &Graph<T>,
        cs: &Partial,
        id: u64,
        timestamp: i64,
    ) -> Vec<Partial> {
        let event = lookup(&self.events, id);
        let ctx = Ctx {
            graph,
            path: &cs.path,
            events: &self.events,
            timestamp,
        };
        // The decision graph: IGNORE and TAKE edges reachable through PROCEED edges.
        let mut edges = Vec::new();
        let mut stack = vec![cs.state as usize];
        while let Some(s) = stack.pop() {
            for t in &graph.states[s].transitions {
                if t.condition.test(event, &ctx) {
                    match t.action {
                        Action::Proceed => stack.push(t.target),
                        Action::Take | Action::Ignore => edges.push((s, t)),
                    }
                }
            }
        }
        let is_start = graph.states[cs.state as usize].start;
        let mut out = Vec::new();
        for (source, edge) in edges {
            match edge.action {
                Action::Ignore => {
                    if !is_start {
                        out.push(Partial {
                            state: edge.target as u32,
                            path: cs.path.clone(),
                            start_ts: cs.start_ts,
                            start: cs.start,
                        });
                    }
                }
                Action::Take => {
                    let mut path = cs.path.clone();
                    path.push((source as u32, id));
                    let (start_ts, start) = if is_start {
                        (timestamp, Some(id))
                    } else {
                        (cs.start_ts, cs.start)
                    };
                    if let Some(fin) = find_final_after_proceed(graph, edge.target, event, &ctx) {
                        out.push(Partial {
                            state: edge.target as u32,
                            path: path.clone(),
                            start_ts,
                            start,
                        });
                        out.push(Partial {
                            state: fin as u32,
                            path,
                            start_ts,
                            start,
                        });
                    } else {
                        out.push(Partial {
                            state: edge.target as u32,
                            path,
                            start_ts,
                            start,
                        });
                    }
                }
                Action::Proceed => unreachable!("PROCEED edges are followed above"),
            }
        }
        if is_start {
            out.push(Partial {
                state: cs.state,
                path: Vec::new(),
                start_ts: 0,
                start: None,
            });
        }
        out
    }

    /// Drops the events no partial or waiting match references any more.
    fn collect_garbage(&mut self) {
        let mut used: Vec<u64> = self
            .partial
            .iter()
            .chain(&self.completed)
            .flat_map(|p| p.path.iter().map(|(_, id)| *id))
            .collect();
        used.sort_unstable();
        used.dedup();
        self.events.retain(|(id, _)| used.binary_search(id).is_ok());
    }
}

/// A final state reachable from `state` through PROCEED edges that accept `event`.
fn find_final_after_proceed<T>(
    graph: &Graph<T>,
    state: usize,
    event: &T,
    ctx: &dyn ConditionContext<T>,
) -> Option<usize> {
    let mut stack = vec![state];
    while let Some(s) = stack.pop() {
        for t in &graph.states[s].transitions {
            if t.action == Action::Proceed && t.condition.test(event, ctx) {
                if graph.states[t.target].kind == StateType::Final {
                    return Some(t.target);
                }
                stack.push(t.target);
            }
        }
    }
    None
}
