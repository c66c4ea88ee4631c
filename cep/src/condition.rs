//! Conditions on events: simple (`where_`), iterative (`where_iterative`, with the events
//! already matched) and their combinations, as Flink's `IterativeCondition` family.

use std::sync::Arc;

/// What an iterative condition can see besides the event (Flink's `IterativeCondition.Context`).
pub trait ConditionContext<T> {
    /// The events of the partial match so far that were taken by the pattern `name`, in
    /// order (the event under test is not among them).
    fn events_for_pattern(&self, name: &str) -> Vec<&T>;
    /// The event-time timestamp of the event under test.
    fn timestamp(&self) -> i64;
}

type Simple<T> = Arc<dyn Fn(&T) -> bool + Send + Sync>;
type Iterative<T> = Arc<dyn Fn(&T, &dyn ConditionContext<T>) -> bool + Send + Sync>;

/// A condition on an event, cheap to clone (shared closures).
pub enum Condition<T> {
    /// Always true (a pattern without `where_`).
    True,
    /// A condition on the event alone.
    Simple(Simple<T>),
    /// A condition on the event and the partial match so far.
    Iterative(Iterative<T>),
    /// Negation.
    Not(Arc<Condition<T>>),
    /// Both.
    And(Arc<Condition<T>>, Arc<Condition<T>>),
    /// Either.
    Or(Arc<Condition<T>>, Arc<Condition<T>>),
}

impl<T> Clone for Condition<T> {
    fn clone(&self) -> Self {
        match self {
            Condition::True => Condition::True,
            Condition::Simple(f) => Condition::Simple(f.clone()),
            Condition::Iterative(f) => Condition::Iterative(f.clone()),
            Condition::Not(c) => Condition::Not(c.clone()),
            Condition::And(a, b) => Condition::And(a.clone(), b.clone()),
            Condition::Or(a, b) => Condition::Or(a.clone(), b.clone()),
        }
    }
}

impl<T> std::fmt::Debug for Condition<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::True => write!(f, "true"),
            Condition::Simple(_) => write!(f, "where"),
            Condition::Iterative(_) => write!(f, "where_iterative"),
            Condition::Not(c) => write!(f, "not({c:?})"),
            Condition::And(a, b) => write!(f, "and({a:?}, {b:?})"),
            Condition::Or(a, b) => write!(f, "or({a:?}, {b:?})"),
        }
    }
}

/// `!condition`.
impl<T> std::ops::Not for Condition<T> {
    type Output = Condition<T>;

    fn not(self) -> Self {
        Condition::Not(Arc::new(self))
    }
}

impl<T> Condition<T> {
    /// A condition on the event alone.
    pub fn simple(f: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        Condition::Simple(Arc::new(f))
    }

    /// A condition on the event and the partial match so far.
    pub fn iterative(
        f: impl Fn(&T, &dyn ConditionContext<T>) -> bool + Send + Sync + 'static,
    ) -> Self {
        Condition::Iterative(Arc::new(f))
    }

    /// `self && other`.
    pub fn and(self, other: Condition<T>) -> Self {
        Condition::And(Arc::new(self), Arc::new(other))
    }

    /// `self || other`.
    pub fn or(self, other: Condition<T>) -> Self {
        Condition::Or(Arc::new(self), Arc::new(other))
    }

    /// Evaluates the condition for `event` in `ctx`.
    pub fn test(&self, event: &T, ctx: &dyn ConditionContext<T>) -> bool {
        match self {
            Condition::True => true,
            Condition::Simple(f) => f(event),
            Condition::Iterative(f) => f(event, ctx),
            Condition::Not(c) => !c.test(event, ctx),
            Condition::And(a, b) => a.test(event, ctx) && b.test(event, ctx),
            Condition::Or(a, b) => a.test(event, ctx) || b.test(event, ctx),
        }
    }
}
