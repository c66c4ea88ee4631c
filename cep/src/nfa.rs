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
use crate::heap::{HeapKey, JavaHeap};
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

impl HeapKey for Partial {
    /// Flink's `COMPUTATION_STATE_COMPARATOR`: by first event, the start state last.
    fn key(&self) -> u64 {
        self.start.unwrap_or(u64::MAX)
    }
}

/// The NFA state of one key: partial matches, matches waiting for earlier partial matches
/// (with a skip strategy), and the events they reference. Stored in keyed state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NfaState<T> {
    partial: JavaHeap<Partial>,
    completed: JavaHeap<Partial>,
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
        let mut partial = JavaHeap::new();
        partial.offer(Partial {
            state: graph.start as u32,
            path: Vec::new(),
            start_ts: 0,
            start: None,
        });
        NfaState {
            partial,
            completed: JavaHeap::new(),
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
            .chain(self.completed.iter())
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
        let mut new_partial = JavaHeap::new();
        let mut potential = JavaHeap::new();
        for cs in self.partial.take_all() {
            let next = self.compute_next_states(graph, &cs, id, timestamp);
            let mut retain = Vec::new();
            let mut discard = false;
            for n in next {
                match graph.states[n.state as usize].kind {
                    StateType::Final => potential.offer(n),
                    StateType::Stop => discard = true,
                    _ => retain.push(n),
                }
            }
            if !discard {
                retain.into_iter().for_each(|n| new_partial.offer(n));
            }
        }
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
        let mut new_partial = JavaHeap::new();
        let mut potential = JavaHeap::new();
        for cs in self.partial.take_all() {
            let state = &graph.states[cs.state as usize];
            let timed_out = !state.start && timestamp.saturating_sub(cs.start_ts) >= graph.window;
            if !timed_out {
                new_partial.offer(cs);
            } else if state.kind == StateType::Pending {
                potential.offer(cs);
            } else {
                let m = self.materialize(graph, &cs.path);
                out.timed_out
                    .push((m, cs.start_ts.saturating_add(graph.window)));
            }
        }
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
        potential: JavaHeap<Partial>,
        partial: &mut JavaHeap<Partial>,
    ) -> Vec<Match<T>> {
        for m in potential.iter() {
            self.completed.offer(m.clone());
        }
        let mut result = Vec::new();
        while let Some(earliest) = self.completed.peek() {
            if partial.peek().is_some_and(|p| earliest.key() > p.key()) {
                break;
            }
            let m = self.completed.poll().expect("peeked");
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
            .chain(self.completed.iter())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiler::compile;
    use crate::pattern::Pattern;
    use crate::skip::AfterMatchSkipStrategy;
    use std::time::Duration;

    /// An event: a letter and the rest of its name ("a1" is `('a', "a1")`).
    type Ev = (char, String);

    fn is(c: char) -> impl Fn(&Ev) -> bool + Send + Sync + 'static {
        move |e: &Ev| e.0 == c
    }

    /// Feeds the space-separated events of `input` at timestamps 0, 1, 2, ... and returns
    /// every match as its events joined by spaces, in emission order.
    fn run(pattern: Pattern<Ev>, input: &str) -> Vec<String> {
        let graph = compile(&pattern).expect("the pattern compiles");
        let mut nfa = NfaState::new(&graph);
        let mut out = Vec::new();
        for (ts, name) in input.split_whitespace().enumerate() {
            let ev = (name.chars().next().unwrap(), name.to_string());
            let ts = ts as i64;
            let advanced = nfa.advance_time(&graph, ts);
            out.extend(advanced.matches);
            out.extend(nfa.process(&graph, ev, ts));
        }
        out.extend(nfa.advance_time(&graph, i64::MAX).matches);
        out.iter()
            .map(|m| {
                m.events()
                    .map(|e| e.1.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn contiguity_strict_relaxed_and_non_deterministic() {
        // Flink's documentation: pattern "a b", input "a1 c b1 b2".
        let input = "a1 c b1 b2";
        let strict = Pattern::begin("a")
            .where_(is('a'))
            .next("b")
            .where_(is('b'));
        assert!(run(strict, input).is_empty());
        let relaxed = Pattern::begin("a")
            .where_(is('a'))
            .followed_by("b")
            .where_(is('b'));
        assert_eq!(run(relaxed, input), strs(&["a1 b1"]));
        let any = Pattern::begin("a")
            .where_(is('a'))
            .followed_by_any("b")
            .where_(is('b'));
        assert_eq!(sorted(run(any, input)), strs(&["a1 b1", "a1 b2"]));
    }

    fn c_a_plus_b() -> Pattern<Ev> {
        Pattern::begin("start")
            .where_(is('c'))
            .followed_by("middle")
            .where_(is('a'))
            .one_or_more()
    }

    #[test]
    fn one_or_more_with_consecutive_and_combinations() {
        // Flink's documentation of consecutive() and allowCombinations().
        let input = "c d a1 a2 a3 d a4 b";
        let end = |p: Pattern<Ev>| p.followed_by("end").where_(is('b'));
        assert_eq!(
            sorted(run(end(c_a_plus_b()), input)),
            strs(&["c a1 a2 a3 a4 b", "c a1 a2 a3 b", "c a1 a2 b", "c a1 b"])
        );
        assert_eq!(
            sorted(run(end(c_a_plus_b().consecutive()), input)),
            strs(&["c a1 a2 a3 b", "c a1 a2 b", "c a1 b"])
        );
        assert_eq!(
            sorted(run(end(c_a_plus_b().allow_combinations()), input)),
            strs(&[
                "c a1 a2 a3 a4 b",
                "c a1 a2 a3 b",
                "c a1 a2 a4 b",
                "c a1 a2 b",
                "c a1 a3 a4 b",
                "c a1 a3 b",
                "c a1 a4 b",
                "c a1 b",
            ])
        );
    }

    fn b_plus_c(skip: AfterMatchSkipStrategy) -> Pattern<Ev> {
        Pattern::begin_with_skip("b", skip)
            .where_(is('b'))
            .one_or_more()
            .next("c")
            .where_(is('c'))
    }

    #[test]
    fn skip_strategies_as_documented_by_flink() {
        // Flink's documentation: pattern "b+ c" (strict), input "b1 b2 b3 c".
        let input = "b1 b2 b3 c";
        let all = strs(&["b1 b2 b3 c", "b2 b3 c", "b3 c"]);
        assert_eq!(run(b_plus_c(AfterMatchSkipStrategy::no_skip()), input), all);
        assert_eq!(
            run(b_plus_c(AfterMatchSkipStrategy::skip_to_next()), input),
            all
        );
        assert_eq!(
            run(
                b_plus_c(AfterMatchSkipStrategy::skip_past_last_event()),
                input
            ),
            strs(&["b1 b2 b3 c"])
        );
        // The matches starting at b2 and b3 wait behind the partial match that started at b1
        // (the inner relaxed loop ignores c and may still take a b); skip-to-first does not
        // prune it, so they are not emitted yet.
        assert_eq!(
            run(b_plus_c(AfterMatchSkipStrategy::skip_to_first("b")), input),
            strs(&["b1 b2 b3 c"])
        );
        assert_eq!(
            run(b_plus_c(AfterMatchSkipStrategy::skip_to_last("b")), input),
            strs(&["b1 b2 b3 c", "b3 c"])
        );
    }

    #[test]
    fn times_optional_and_greedy() {
        let a2 = Pattern::begin("a")
            .where_(is('a'))
            .times(2)
            .followed_by("b")
            .where_(is('b'));
        assert_eq!(
            sorted(run(a2, "a1 x a2 a3 b")),
            strs(&["a1 a2 b", "a2 a3 b"])
        );
        let opt = Pattern::begin("s")
            .where_(is('s'))
            .followed_by("a")
            .where_(is('a'))
            .optional()
            .followed_by("b")
            .where_(is('b'));
        assert_eq!(sorted(run(opt, "s1 a1 b1")), strs(&["s1 a1 b1", "s1 b1"]));
        // Greedy a+ before an optional-free b: the loop keeps taking a's.
        let greedy = Pattern::begin("s")
            .where_(is('s'))
            .followed_by("a")
            .where_(is('a'))
            .one_or_more()
            .greedy()
            .followed_by("b")
            .where_(is('b'));
        assert_eq!(run(greedy, "s1 a1 a2 b1"), strs(&["s1 a1 a2 b1"]));
    }

    #[test]
    fn not_next_not_followed_by_and_until() {
        let not_next = || {
            Pattern::begin("a")
                .where_(is('a'))
                .not_next("x")
                .where_(is('x'))
                .followed_by("b")
                .where_(is('b'))
        };
        assert!(run(not_next(), "a1 x1 b1").is_empty());
        assert_eq!(run(not_next(), "a1 c1 b1"), strs(&["a1 b1"]));
        let not_followed = || {
            Pattern::begin("a")
                .where_(is('a'))
                .not_followed_by("x")
                .where_(is('x'))
                .followed_by("b")
                .where_(is('b'))
        };
        assert!(run(not_followed(), "a1 c1 x1 b1").is_empty());
        assert_eq!(run(not_followed(), "a1 c1 b1 x1"), strs(&["a1 b1"]));
        let until = Pattern::begin("a")
            .where_(is('a'))
            .one_or_more()
            .until(is('u'))
            .followed_by("b")
            .where_(is('b'));
        // The until event ends the loops of a1 and a2: a3 cannot join them, the pattern
        // goes on to b.
        assert_eq!(
            sorted(run(until, "a1 a2 u1 a3 b1")),
            strs(&["a1 a2 b1", "a1 b1", "a2 b1", "a3 b1"])
        );
    }

    #[test]
    fn iterative_conditions_see_the_events_taken_so_far() {
        // Rising values: each "up" event must be greater than the previous ones.
        let rising = Pattern::<(char, String)>::begin("up")
            .where_iterative(|e, ctx| ctx.events_for_pattern("up").iter().all(|p| p.1 < e.1))
            .times(3)
            .consecutive();
        assert_eq!(run(rising, "a1 a3 a2 a4 a5"), strs(&["a2 a4 a5"]));
    }

    #[test]
    fn within_times_out_partial_matches() {
        let pattern = Pattern::begin("a")
            .where_(is('a'))
            .followed_by("b")
            .where_(is('b'))
            .within(Duration::from_millis(2));
        let graph = compile(&pattern).unwrap();
        let mut nfa = NfaState::new(&graph);
        assert!(nfa.process(&graph, ('a', "a1".into()), 0).is_empty());
        assert!(nfa.advance_time(&graph, 1).timed_out.is_empty());
        let advanced = nfa.advance_time(&graph, 2);
        assert_eq!(advanced.timed_out.len(), 1);
        assert_eq!(
            advanced.timed_out[0].1, 2,
            "timeout timestamp: start + window"
        );
        assert_eq!(advanced.timed_out[0].0.first("a").unwrap().1, "a1");
        assert!(nfa.process(&graph, ('b', "b1".into()), 3).is_empty());
        assert!(nfa.is_idle(), "the timed-out match released its events");
    }

    #[test]
    fn a_trailing_not_followed_by_completes_when_the_window_ends() {
        let pattern = || {
            Pattern::begin("a")
                .where_(is('a'))
                .not_followed_by("x")
                .where_(is('x'))
                .within(Duration::from_millis(3))
        };
        assert_eq!(run(pattern(), "a1 c1 c2 c3"), strs(&["a1"]));
        assert!(run(pattern(), "a1 c1 x1 c3").is_empty());
        let no_window = Pattern::<Ev>::begin("a").not_followed_by("x");
        assert!(compile(&no_window).is_err());
    }

    #[test]
    fn malformed_patterns_are_refused() {
        let dup = Pattern::<Ev>::begin("a").followed_by("a");
        assert!(matches!(compile(&dup), Err(CepError::MalformedPattern(_))));
        let twice = Pattern::<Ev>::begin("a").times(2).one_or_more();
        assert!(compile(&twice).is_err());
        let skip = Pattern::<Ev>::begin_with_skip("a", AfterMatchSkipStrategy::skip_to_first("z"));
        assert!(compile(&skip).is_err());
        let until = Pattern::<Ev>::begin("a").until(|_| true);
        assert!(compile(&until).is_err());
        let opt_not = Pattern::<Ev>::begin("a").optional().not_next("b");
        assert!(compile(&opt_not).is_err());
        let greedy_single = Pattern::<Ev>::begin("a").greedy();
        assert!(compile(&greedy_single).is_err());
        let consecutive_single = Pattern::<Ev>::begin("a").consecutive();
        assert!(compile(&consecutive_single).is_err());
        let zero = Pattern::<Ev>::begin("a").times(0);
        assert!(compile(&zero).is_err());
    }

    #[test]
    fn state_of_another_pattern_is_refused_on_restore() {
        let long = Pattern::begin("a")
            .where_(is('a'))
            .followed_by("b")
            .where_(is('b'))
            .one_or_more()
            .followed_by("c");
        let long_graph = compile(&long).unwrap();
        let mut nfa = NfaState::new(&long_graph);
        nfa.process(&long_graph, ('a', "a1".into()), 0);
        nfa.process(&long_graph, ('b', "b1".into()), 1);
        let short = compile(&Pattern::<Ev>::begin("a")).unwrap();
        assert!(matches!(
            nfa.check(&short),
            Err(CepError::IncompatibleState { .. })
        ));
        nfa.check(&long_graph).unwrap();
    }

    #[test]
    fn state_round_trips_through_the_snapshot_encoding() {
        let pattern = Pattern::begin("a")
            .where_(is('a'))
            .followed_by("b")
            .where_(is('b'));
        let graph = compile(&pattern).unwrap();
        let mut nfa = NfaState::new(&graph);
        nfa.process(&graph, ('a', "a1".into()), 0);
        let bytes = fjord::encoding::to_vec(&nfa).unwrap();
        let mut restored: NfaState<Ev> = fjord::encoding::from_slice(&bytes).unwrap();
        restored.check(&graph).unwrap();
        let matched = restored.process(&graph, ('b', "b1".into()), 1);
        assert_eq!(matched.len(), 1);
        assert_eq!(matched[0].first("a").unwrap().1, "a1");
    }
}
