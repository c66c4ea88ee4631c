//! Compiles a [`Pattern`] into the states and transitions of an NFA, following Flink's
//! `NFACompiler`: the pattern is walked from its last part to its first; every part becomes
//! one or more states with TAKE, IGNORE and PROCEED (epsilon) transitions; NOT parts become
//! STOP states; the first state is the start state.

use crate::condition::Condition;
use crate::error::CepError;
use crate::pattern::{Contiguity, Kind, Pattern};
use crate::skip::AfterMatchSkipStrategy;
use std::collections::{HashMap, HashSet};
use std::ops::Not;

/// The name of the final state (Flink's `$endState$`).
pub(crate) const ENDING_STATE_NAME: &str = "$endState$";

/// What a transition does with the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// The event is added to the match and the NFA moves to the target.
    Take,
    /// The event is skipped; the NFA moves to the target.
    Ignore,
    /// The NFA moves to the target without consuming the event.
    Proceed,
}

/// The kind of an NFA state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateType {
    Normal,
    Final,
    Stop,
    /// Waits for the window to end (a trailing `not_followed_by` with `within`).
    Pending,
}

/// An edge of the NFA.
#[derive(Debug)]
pub(crate) struct Transition<T> {
    pub(crate) action: Action,
    pub(crate) target: usize,
    pub(crate) condition: Condition<T>,
}

impl<T> Clone for Transition<T> {
    fn clone(&self) -> Self {
        Transition {
            action: self.action,
            target: self.target,
            condition: self.condition.clone(),
        }
    }
}

/// A state of the NFA.
#[derive(Debug)]
pub(crate) struct State<T> {
    /// The name of the pattern part the state belongs to.
    pub(crate) name: String,
    pub(crate) kind: StateType,
    pub(crate) start: bool,
    pub(crate) transitions: Vec<Transition<T>>,
}

/// The compiled NFA: states, the start state and the window.
#[derive(Debug)]
pub(crate) struct Graph<T> {
    pub(crate) states: Vec<State<T>>,
    pub(crate) start: usize,
    /// The smallest `within` of the pattern in milliseconds, 0 without one.
    pub(crate) window: i64,
    pub(crate) skip: AfterMatchSkipStrategy,
}

/// Compiles `pattern` into its NFA.
///
/// # Errors
/// [`CepError::MalformedPattern`] for what Flink's compiler rejects: duplicate names, a
/// trailing `not_followed_by` without `within`, a skip strategy naming no part, and the
/// misuses recorded while the pattern was built.
pub(crate) fn compile<T: 'static>(pattern: &Pattern<T>) -> Result<Graph<T>, CepError> {
    if let Some(e) = &pattern.error {
        return Err(e.clone());
    }
    let mut names = HashSet::new();
    for part in &pattern.parts {
        if part.name == ENDING_STATE_NAME || !names.insert(part.name.as_str()) {
            return Err(CepError::MalformedPattern(format!(
                "duplicate pattern name '{}'; every part needs its own name",
                part.name
            )));
        }
    }
    if let Some(name) = pattern.skip.pattern_name()
        && !names.contains(name)
    {
        return Err(CepError::MalformedPattern(format!(
            "the pattern name '{name}' of the after-match skip strategy is not a part of the pattern"
        )));
    }
    let window = pattern
        .parts
        .iter()
        .filter_map(|p| p.within)
        .min()
        .unwrap_or(0);
    let last = pattern.parts.last().expect("a pattern has a part");
    if last.contiguity == Contiguity::NotFollow && window <= 0 {
        return Err(CepError::MalformedPattern(
            "not_followed_by as the last part needs within(...)".into(),
        ));
    }
    let mut c = Compiler {
        pattern,
        states: Vec::new(),
        stop_states: HashMap::new(),
        originals: HashMap::new(),
        current: pattern.parts.len() - 1,
        following: None,
        window,
    };
    let end = c.create_state(ENDING_STATE_NAME, StateType::Final);
    let sink = c.create_middle_states(end);
    let start = c.convert_pattern(sink);
    c.states[start].start = true;
    Ok(Graph {
        states: c.states,
        start,
        window,
        skip: pattern.skip.clone(),
    })
}

struct Compiler<'p, T> {
    pattern: &'p Pattern<T>,
    states: Vec<State<T>>,
    stop_states: HashMap<String, usize>,
    /// Copies of states made before a greedy part changed them, for the PROCEED edge taken
    /// when the part's until condition holds (Flink's `originalStateMap`).
    originals: HashMap<usize, usize>,
    /// The part being converted (walking backwards).
    current: usize,
    /// The part after `current`.
    following: Option<usize>,
    window: i64,
}

impl<T: 'static> Compiler<'_, T> {
    fn create_state(&mut self, name: &str, kind: StateType) -> usize {
        self.states.push(State {
            name: name.to_string(),
            kind,
            start: false,
            transitions: Vec::new(),
        });
        self.states.len() - 1
    }

    fn add(&mut self, from: usize, action: Action, to: usize, condition: Condition<T>) {
        self.states[from].transitions.push(Transition {
            action,
            target: to,
            condition,
        });
    }

    fn create_middle_states(&mut self, sink: usize) -> usize {
        let mut last_sink = sink;
        while self.current > 0 {
            let part = &self.pattern.parts[self.current];
            match part.contiguity {
                Contiguity::NotFollow => {
                    // Converted into edge conditions of the states before, except a trailing
                    // one with a window: it waits in a pending state until the window ends.
                    if self.window > 0 && self.states[last_sink].kind == StateType::Final {
                        let pending = self.create_state(&part.name.clone(), StateType::Pending);
                        let not = part.take_condition();
                        let stop = self.create_stop_state(not.clone(), &part.name.clone());
                        self.add(pending, Action::Proceed, stop, not.clone());
                        self.add(pending, Action::Ignore, pending, not.not());
                        last_sink = pending;
                    }
                }
                Contiguity::NotNext => {
                    let name = part.name.clone();
                    let not = part.take_condition();
                    let not_next = self.create_state(&name, StateType::Normal);
                    let stop = self.create_stop_state(not.clone(), &name);
                    if self.states[last_sink].kind == StateType::Final {
                        // so that the proceed to final is not fired
                        self.add(not_next, Action::Ignore, last_sink, not.clone().not());
                    } else {
                        self.add(not_next, Action::Proceed, last_sink, not.clone().not());
                    }
                    self.add(not_next, Action::Proceed, stop, not);
                    last_sink = not_next;
                }
                _ => last_sink = self.convert_pattern(last_sink),
            }
            self.following = Some(self.current);
            self.current -= 1;
        }
        last_sink
    }

    fn part(&self) -> &crate::pattern::Part<T> {
        &self.pattern.parts[self.current]
    }

    fn convert_pattern(&mut self, sink: usize) -> usize {
        let last = match self.part().kind {
            Kind::Looping => {
                let sink_copy = self.copy_without_transitive_nots(sink);
                let looping = self.create_looping(sink_copy);
                self.create_times_state(looping, sink)
            }
            Kind::Times => self.create_times_state(sink, sink),
            Kind::Single => {
                let take = self.part().take_condition();
                let ignore = self.ignore_condition();
                let optional = self.part().optional;
                self.create_singleton_state(sink, Some(sink), take, ignore, optional)
            }
        };
        self.add_stop_states(last);
        last
    }

    fn create_stop_state(&mut self, not: Condition<T>, name: &str) -> usize {
        if let Some(&s) = self.stop_states.get(name) {
            return s;
        }
        let stop = self.create_state(name, StateType::Stop);
        self.add(stop, Action::Take, stop, not);
        self.stop_states.insert(name.to_string(), stop);
        stop
    }

    /// The NOT conditions that apply to the current part: those of `not_followed_by` parts
    /// before it, reached back through optional parts.
    fn current_not_conditions(&self) -> Vec<(Condition<T>, String)> {
        let parts = &self.pattern.parts;
        let mut out = Vec::new();
        let mut p = self.current;
        while p > 0 && (parts[p - 1].optional || parts[p - 1].contiguity == Contiguity::NotFollow) {
            p -= 1;
            if parts[p].contiguity == Contiguity::NotFollow {
                out.push((parts[p].take_condition(), parts[p].name.clone()));
            }
        }
        out
    }

    /// A copy of `sink` without the STOP transitions of NOT parts before an optional current
    /// part: taking an event in an optional part ends those NOT conditions.
    fn copy_without_transitive_nots(&mut self, sink: usize) -> usize {
        let nots = self.current_not_conditions();
        if nots.is_empty() || !self.part().optional {
            return sink;
        }
        let (name, kind) = (self.states[sink].name.clone(), self.states[sink].kind);
        let copy = self.create_state(&name, kind);
        for t in self.states[sink].transitions.clone() {
            if t.action == Action::Proceed {
                let target = t.target;
                let remove = self.states[target].kind == StateType::Stop
                    && nots.iter().any(|(_, n)| *n == self.states[target].name);
                if !remove {
                    let target = if self.states[target].kind == StateType::Stop {
                        target
                    } else {
                        self.copy_without_transitive_nots(target)
                    };
                    self.add(copy, t.action, target, t.condition);
                }
            } else {
                let target = if t.target == sink { copy } else { t.target };
                self.add(copy, t.action, target, t.condition);
            }
        }
        copy
    }

    /// A copy of `state` with the same transitions (Flink's `copy`).
    fn copy(&mut self, state: usize) -> usize {
        let (name, kind) = (self.states[state].name.clone(), self.states[state].kind);
        let copy = self.create_state(&name, kind);
        for t in self.states[state].transitions.clone() {
            let target = if t.target == state { copy } else { t.target };
            self.add(copy, t.action, target, t.condition);
        }
        copy
    }

    /// Flink's `updateWithGreedyCondition`: the states after a greedy part only act on an
    /// event the part cannot take.
    fn update_with_greedy_condition(&mut self, state: usize, take: &Condition<T>) {
        let not_take = take.clone().not();
        for t in &mut self.states[state].transitions {
            t.condition = t.condition.clone().and(not_take.clone());
        }
    }

    fn add_stop_states(&mut self, state: usize) {
        for (not, name) in self.current_not_conditions() {
            let stop = self.create_stop_state(not.clone(), &name);
            self.add(state, Action::Proceed, stop, not);
        }
    }

    fn add_stop_state_to_looping(&mut self, state: usize) {
        if let Some(f) = self.following {
            let part = &self.pattern.parts[f];
            if part.contiguity == Contiguity::NotFollow {
                let (not, name) = (part.take_condition(), part.name.clone());
                let stop = self.create_stop_state(not.clone(), &name);
                self.add(state, Action::Proceed, stop, not);
            }
        }
    }

    fn create_times_state(&mut self, sink: usize, proceed: usize) -> usize {
        let part = self.part();
        let (from, to, optional) = (part.from, part.to, part.optional);
        let until = part.until.clone();
        let inner_ignore = extend_with_until(self.inner_ignore_condition(), until.clone(), false);
        let greedy = part.greedy && from != to;
        let has_until = until.is_some();
        let take =
            extend_with_until(Some(part.take_condition()), until, true).expect("a take condition");
        if greedy {
            if has_until {
                let copy = self.copy(sink);
                self.originals.insert(sink, copy);
            }
            self.update_with_greedy_condition(sink, &take);
        }
        let mut last = sink;
        for _ in from..to {
            last = self.create_singleton_state(
                last,
                Some(proceed),
                take.clone(),
                inner_ignore.clone(),
                true,
            );
            self.add_stop_state_to_looping(last);
        }
        for _ in 1..from {
            last =
                self.create_singleton_state(last, None, take.clone(), inner_ignore.clone(), false);
            self.add_stop_state_to_looping(last);
        }
        let ignore = self.ignore_condition();
        self.create_singleton_state(last, Some(proceed), take, ignore, optional)
    }

    fn create_singleton_state(
        &mut self,
        sink: usize,
        proceed: Option<usize>,
        take: Condition<T>,
        ignore: Option<Condition<T>>,
        optional: bool,
    ) -> usize {
        let name = self.part().name.clone();
        let state = self.create_state(&name, StateType::Normal);
        let sink = self.copy_without_transitive_nots(sink);
        self.add(state, Action::Take, sink, take.clone());
        if optional && let Some(proceed) = proceed {
            match self.part().until.clone().filter(|_| self.part().greedy) {
                Some(until) => {
                    if let Some(&original) = self.originals.get(&proceed) {
                        self.add(
                            state,
                            Action::Proceed,
                            original,
                            Condition::True.and(until.clone()),
                        );
                    }
                    self.add(
                        state,
                        Action::Proceed,
                        proceed,
                        Condition::True.and(until.not()),
                    );
                }
                None => self.add(state, Action::Proceed, proceed, Condition::True),
            }
        }
        if let Some(ignore) = ignore {
            let ignore_state = if optional {
                let s = self.create_state(&name, StateType::Normal);
                self.add(s, Action::Take, sink, take.clone());
                self.add(s, Action::Ignore, s, ignore.clone());
                self.add_stop_states(s);
                s
            } else {
                state
            };
            self.add(state, Action::Ignore, ignore_state, ignore);
        }
        state
    }

    fn create_looping(&mut self, sink: usize) -> usize {
        let part = self.part();
        let name = part.name.clone();
        let greedy = part.greedy;
        let until = part.until.clone();
        let ignore = extend_with_until(self.inner_ignore_condition(), until.clone(), false);
        let part_take = part.take_condition();
        let take = extend_with_until(Some(part.take_condition()), until.clone(), true)
            .expect("a take condition");
        let looping = self.create_state(&name, StateType::Normal);
        if greedy {
            match until {
                Some(until) => {
                    let copy = self.copy(sink);
                    self.add(
                        looping,
                        Action::Proceed,
                        copy,
                        Condition::True.and(until.clone()),
                    );
                    self.originals.insert(sink, copy);
                    self.add(
                        looping,
                        Action::Proceed,
                        sink,
                        Condition::True.and(until.not()),
                    );
                }
                None => self.add(looping, Action::Proceed, sink, Condition::True),
            }
            self.update_with_greedy_condition(sink, &part_take);
        } else {
            self.add(looping, Action::Proceed, sink, Condition::True);
        }
        self.add(looping, Action::Take, looping, take.clone());
        self.add_stop_state_to_looping(looping);
        if let Some(ignore) = ignore {
            let ignore_state = self.create_state(&name, StateType::Normal);
            self.add(ignore_state, Action::Take, looping, take);
            self.add(ignore_state, Action::Ignore, ignore_state, ignore.clone());
            self.add(looping, Action::Ignore, ignore_state, ignore);
            self.add_stop_state_to_looping(ignore_state);
        }
        looping
    }

    fn ignore_for(&self, contiguity: Contiguity) -> Option<Condition<T>> {
        match contiguity {
            Contiguity::Strict => None,
            Contiguity::Relaxed => Some(self.part().take_condition().not()),
            Contiguity::NonDeterministicRelaxed => Some(Condition::True),
            Contiguity::NotNext | Contiguity::NotFollow => None,
        }
    }

    /// The IGNORE condition between the part and the events before it.
    fn ignore_condition(&self) -> Option<Condition<T>> {
        self.ignore_for(self.part().contiguity)
    }

    /// The IGNORE condition between the events of a looping or times part.
    fn inner_ignore_condition(&self) -> Option<Condition<T>> {
        self.ignore_for(self.part().inner)
    }
}

/// Joins `condition` with NOT `until` (Flink's `extendWithUntilCondition`).
fn extend_with_until<T>(
    condition: Option<Condition<T>>,
    until: Option<Condition<T>>,
    is_take: bool,
) -> Option<Condition<T>> {
    match (condition, until) {
        (Some(c), Some(u)) => Some(u.not().and(c)),
        (None, Some(u)) if is_take => Some(u.not()),
        (c, _) => c,
    }
}
