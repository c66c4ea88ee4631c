//! The `Pattern` builder (Flink's `Pattern` and `Quantifier`): a sequence of named parts,
//! each with a contiguity to the part before it, a quantifier and conditions.

use crate::condition::{Condition, ConditionContext};
use crate::error::CepError;
use crate::skip::AfterMatchSkipStrategy;
use std::time::Duration;

/// How a part relates to the events before it (Flink's `Quantifier.ConsumingStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contiguity {
    /// `next`: the very next event must match.
    Strict,
    /// `followed_by`: non-matching events in between are ignored.
    Relaxed,
    /// `followed_by_any`: any events in between may be ignored, matching ones too.
    NonDeterministicRelaxed,
    /// `not_next`: the next event must not match.
    NotNext,
    /// `not_followed_by`: no matching event before the next part.
    NotFollow,
}

/// How many events a part takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Exactly one.
    Single,
    /// Between `from` and `to` (Flink's `times`).
    Times,
    /// `from` or more (Flink's `oneOrMore` / `timesOrMore`).
    Looping,
}

/// One named part of a pattern.
pub(crate) struct Part<T> {
    pub(crate) name: String,
    pub(crate) contiguity: Contiguity,
    /// Contiguity between the events of a looping or times part.
    pub(crate) inner: Contiguity,
    pub(crate) kind: Kind,
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) optional: bool,
    pub(crate) greedy: bool,
    pub(crate) condition: Option<Condition<T>>,
    pub(crate) until: Option<Condition<T>>,
    pub(crate) within: Option<i64>,
}

impl<T> Clone for Part<T> {
    fn clone(&self) -> Self {
        Part {
            name: self.name.clone(),
            contiguity: self.contiguity,
            inner: self.inner,
            kind: self.kind,
            from: self.from,
            to: self.to,
            optional: self.optional,
            greedy: self.greedy,
            condition: self.condition.clone(),
            until: self.until.clone(),
            within: self.within,
        }
    }
}

impl<T> Part<T> {
    fn new(name: String, contiguity: Contiguity) -> Self {
        Part {
            name,
            contiguity,
            inner: Contiguity::Relaxed,
            kind: Kind::Single,
            from: 1,
            to: 1,
            optional: false,
            greedy: false,
            condition: None,
            until: None,
            within: None,
        }
    }

    pub(crate) fn is_not(&self) -> bool {
        matches!(self.contiguity, Contiguity::NotNext | Contiguity::NotFollow)
    }

    /// The condition a TAKE edge checks (true without `where_`).
    pub(crate) fn take_condition(&self) -> Condition<T> {
        self.condition.clone().unwrap_or(Condition::True)
    }
}

/// A pattern of events (Flink's `Pattern`), built from `Pattern::begin(name)`.
///
/// Builder methods apply to the part added last. A misuse that Flink rejects with a
/// `MalformedPatternException` is remembered and reported by [`crate::CEP::pattern`].
pub struct Pattern<T> {
    pub(crate) parts: Vec<Part<T>>,
    pub(crate) skip: AfterMatchSkipStrategy,
    pub(crate) error: Option<CepError>,
}

impl<T> Clone for Pattern<T> {
    fn clone(&self) -> Self {
        Pattern {
            parts: self.parts.clone(),
            skip: self.skip.clone(),
            error: self.error.clone(),
        }
    }
}

impl<T: 'static> Pattern<T> {
    /// Starts a pattern with a part named `name` (Flink's `Pattern.begin`), skip strategy
    /// `NoSkip`.
    pub fn begin(name: impl Into<String>) -> Self {
        Self::begin_with_skip(name, AfterMatchSkipStrategy::NoSkip)
    }

    /// Starts a pattern with an after-match skip strategy (Flink's `Pattern.begin(name, skip)`).
    pub fn begin_with_skip(name: impl Into<String>, skip: AfterMatchSkipStrategy) -> Self {
        Pattern {
            parts: vec![Part::new(name.into(), Contiguity::Relaxed)],
            skip,
            error: None,
        }
    }

    /// The after-match skip strategy.
    pub fn skip_strategy(&self) -> &AfterMatchSkipStrategy {
        &self.skip
    }

    /// The names of the parts, in order.
    pub fn names(&self) -> Vec<&str> {
        self.parts.iter().map(|p| p.name.as_str()).collect()
    }

    fn fail(mut self, message: impl Into<String>) -> Self {
        if self.error.is_none() {
            self.error = Some(CepError::MalformedPattern(message.into()));
        }
        self
    }

    fn last(&self) -> &Part<T> {
        self.parts.last().expect("a pattern has a part")
    }

    fn last_mut(&mut self) -> &mut Part<T> {
        self.parts.last_mut().expect("a pattern has a part")
    }

    fn then(mut self, name: impl Into<String>, contiguity: Contiguity) -> Self {
        if matches!(contiguity, Contiguity::NotNext | Contiguity::NotFollow) && self.last().optional
        {
            return self.fail(
                "a NOT part cannot follow an optional part (Flink: \"Specifying a pattern with an \
                 optional path to NOT condition is not supported yet\")",
            );
        }
        self.parts.push(Part::new(name.into(), contiguity));
        self
    }

    /// Appends a part whose event must directly follow (strict contiguity, Flink's `next`).
    pub fn next(self, name: impl Into<String>) -> Self {
        self.then(name, Contiguity::Strict)
    }

    /// Appends a part that follows with relaxed contiguity (Flink's `followedBy`).
    pub fn followed_by(self, name: impl Into<String>) -> Self {
        self.then(name, Contiguity::Relaxed)
    }

    /// Appends a part that follows with non-deterministic relaxed contiguity (Flink's
    /// `followedByAny`).
    pub fn followed_by_any(self, name: impl Into<String>) -> Self {
        self.then(name, Contiguity::NonDeterministicRelaxed)
    }

    /// Appends a part that the next event must not match (Flink's `notNext`).
    pub fn not_next(self, name: impl Into<String>) -> Self {
        self.then(name, Contiguity::NotNext)
    }

    /// Appends a part no event may match before the following part matches (Flink's
    /// `notFollowedBy`). As the last part it needs `within`.
    pub fn not_followed_by(self, name: impl Into<String>) -> Self {
        self.then(name, Contiguity::NotFollow)
    }

    /// Adds a condition on the event (AND with earlier conditions; Flink's `where`).
    pub fn where_(self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        self.where_condition(Condition::simple(f))
    }

    /// Adds a condition that also sees the events already matched (Flink's `where` with an
    /// `IterativeCondition`).
    pub fn where_iterative(
        self,
        f: impl Fn(&T, &dyn ConditionContext<T>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.where_condition(Condition::iterative(f))
    }

    /// Adds a [`Condition`] (AND with earlier conditions).
    pub fn where_condition(mut self, c: Condition<T>) -> Self {
        let part = self.last_mut();
        part.condition = Some(match part.condition.take() {
            None => c,
            Some(old) => old.and(c),
        });
        self
    }

    /// Adds an alternative condition (OR with earlier conditions; Flink's `or`).
    pub fn or(self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        self.or_condition(Condition::simple(f))
    }

    /// Adds an alternative [`Condition`] (OR with earlier conditions).
    pub fn or_condition(mut self, c: Condition<T>) -> Self {
        let part = self.last_mut();
        part.condition = Some(match part.condition.take() {
            None => c,
            Some(old) => old.or(c),
        });
        self
    }

    /// Stops a looping part when an event matches (Flink's `until`).
    pub fn until(mut self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        if self.last().kind != Kind::Looping {
            return self.fail("the until condition is only applicable to looping parts");
        }
        if self.last().until.is_some() {
            return self.fail("only one until condition can be applied");
        }

        self.last_mut().until = Some(Condition::simple(f));
        self
    }

    /// The longest a match may take, from its first event (Flink's `within`). The NFA uses the
    /// smallest `within` of all parts.
    pub fn within(mut self, window: Duration) -> Self {
        self.last_mut().within = Some(window.as_millis() as i64);
        self
    }

    fn quantify(mut self, kind: Kind, from: u32, to: u32) -> Self {
        if self.last().is_not() {
            return self.fail("quantifiers are not applicable to NOT parts");
        }
        if self.last().kind != Kind::Single {
            let message = format!(
                "a quantifier was already applied to part '{}'",
                self.last().name
            );
            return self.fail(message);
        }
        let part = self.last_mut();
        part.kind = kind;
        part.from = from;
        part.to = to;
        self
    }

    /// The part takes exactly `n` events (Flink's `times(n)`); `n` > 0.
    pub fn times(self, n: u32) -> Self {
        if n == 0 {
            return self.fail("times needs a number greater than 0");
        }
        self.quantify(Kind::Times, n, n)
    }

    /// The part takes `from` to `to` events (Flink's `times(from, to)`); `from` 0 makes it
    /// optional.
    pub fn times_range(self, from: u32, to: u32) -> Self {
        if to == 0 || from > to {
            return self.fail(format!(
                "times({from}, {to}) needs 0 <= from <= to and to > 0"
            ));
        }
        if from == 0 {
            self.quantify(Kind::Times, 1, to).optional()
        } else {
            self.quantify(Kind::Times, from, to)
        }
    }

    /// The part takes one or more events (Flink's `oneOrMore`).
    pub fn one_or_more(self) -> Self {
        self.quantify(Kind::Looping, 1, 1)
    }

    /// The part takes `n` or more events (Flink's `timesOrMore`).
    pub fn times_or_more(self, n: u32) -> Self {
        if n == 0 {
            return self.fail("timesOrMore needs a number greater than 0");
        }
        self.quantify(Kind::Looping, n, n)
    }

    /// The part may take no event (Flink's `optional`).
    pub fn optional(mut self) -> Self {
        if self.last().is_not() {
            return self.fail("optional is not applicable to NOT parts");
        }
        let n = self.parts.len();
        if n >= 2 && self.parts[n - 2].greedy {
            return self.fail("an optional part cannot be preceded by a greedy part");
        }
        self.last_mut().optional = true;
        self
    }

    /// A looping or times part takes as many events as it can (Flink's `greedy`).
    pub fn greedy(mut self) -> Self {
        let part = self.last();
        if part.is_not() {
            return self.fail("greedy is not applicable to NOT parts");
        }
        if part.kind == Kind::Single {
            return self.fail("greedy is not applicable to a part without quantifier");
        }
        if part.inner == Contiguity::NonDeterministicRelaxed {
            return self.fail("greedy is not applicable together with allow_combinations");
        }

        self.last_mut().greedy = true;
        self
    }

    /// The events of a looping or times part must be contiguous (Flink's `consecutive`).
    pub fn consecutive(mut self) -> Self {
        if self.last().kind == Kind::Single {
            return self.fail("consecutive is only applicable to looping or times parts");
        }
        self.last_mut().inner = Contiguity::Strict;
        self
    }

    /// Non-deterministic relaxed contiguity between the events of a looping or times part
    /// (Flink's `allowCombinations`).
    pub fn allow_combinations(mut self) -> Self {
        if self.last().kind == Kind::Single {
            return self.fail("allow_combinations is only applicable to looping or times parts");
        }
        self.last_mut().inner = Contiguity::NonDeterministicRelaxed;
        self
    }
}
