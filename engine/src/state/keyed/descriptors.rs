//! Descriptors of keyed state: name, type, TTL and the functions a state needs (Flink's
//! `StateDescriptor`s).

use super::*;

/// Describes a [`ValueState`]: a single value per key.
#[derive(Clone)]
pub struct ValueStateDescriptor<V> {
    pub(super) name: String,
    pub(super) ttl: Option<StateTtlConfig>,
    pub(super) _v: PhantomData<fn() -> V>,
}

impl<V> ValueStateDescriptor<V> {
    /// A descriptor with an operator-unique name.
    pub fn new(name: impl Into<String>) -> Self {
        ValueStateDescriptor {
            name: name.into(),
            ttl: None,
            _v: PhantomData,
        }
    }
    /// Gives the state a time-to-live (Flink's `enableTimeToLive`).
    pub fn with_ttl(mut self, ttl: StateTtlConfig) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// Describes a [`ListState`].
#[derive(Clone)]
pub struct ListStateDescriptor<V> {
    pub(crate) name: String,
    pub(super) ttl: Option<StateTtlConfig>,
    pub(super) _v: PhantomData<fn() -> V>,
}

impl<V> ListStateDescriptor<V> {
    /// A descriptor with an operator-unique name.
    pub fn new(name: impl Into<String>) -> Self {
        ListStateDescriptor {
            name: name.into(),
            ttl: None,
            _v: PhantomData,
        }
    }
    /// Gives every list element a time-to-live.
    pub fn with_ttl(mut self, ttl: StateTtlConfig) -> Self {
        self.ttl = Some(ttl);
        self
    }
    /// The descriptor's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A reduce function shared by the handles of a [`ReducingStateDescriptor`].
pub type SharedReduce<V> = Arc<dyn Fn(V, V) -> V + Send + Sync>;

/// Describes a [`ReducingState`]: values added are combined with a reduce function.
#[derive(Clone)]
pub struct ReducingStateDescriptor<V> {
    pub(crate) name: String,
    pub(super) ttl: Option<StateTtlConfig>,
    pub(crate) reduce: SharedReduce<V>,
}

impl<V> ReducingStateDescriptor<V> {
    /// A descriptor with a name and the function that combines two values.
    pub fn new(
        name: impl Into<String>,
        reduce: impl Fn(V, V) -> V + Send + Sync + 'static,
    ) -> Self {
        ReducingStateDescriptor {
            name: name.into(),
            ttl: None,
            reduce: Arc::new(reduce),
        }
    }
    /// Gives the state a time-to-live.
    pub fn with_ttl(mut self, ttl: StateTtlConfig) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// Describes an [`AggregatingState`]: inputs are folded into an accumulator by an
/// [`AggregateFunction`]; reading gives the function's result.
#[derive(Clone)]
pub struct AggregatingStateDescriptor<IN, ACC, OUT, F> {
    pub(super) name: String,
    pub(super) ttl: Option<StateTtlConfig>,
    pub(super) f: F,
    pub(super) _t: PhantomData<fn(IN, ACC) -> OUT>,
}

impl<IN, ACC, OUT, F: AggregateFunction<IN, ACC, OUT> + Clone>
    AggregatingStateDescriptor<IN, ACC, OUT, F>
{
    /// A descriptor with a name and the aggregate function.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        AggregatingStateDescriptor {
            name: name.into(),
            ttl: None,
            f,
            _t: PhantomData,
        }
    }
    /// Gives the state a time-to-live.
    pub fn with_ttl(mut self, ttl: StateTtlConfig) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// Describes a [`MapState`] (and broadcast state, which is a map too).
#[derive(Clone)]
pub struct MapStateDescriptor<UK, UV> {
    pub(crate) name: String,
    pub(super) ttl: Option<StateTtlConfig>,
    pub(super) _t: PhantomData<fn() -> (UK, UV)>,
}

impl<UK, UV> MapStateDescriptor<UK, UV> {
    /// A descriptor with an operator-unique name.
    pub fn new(name: impl Into<String>) -> Self {
        MapStateDescriptor {
            name: name.into(),
            ttl: None,
            _t: PhantomData,
        }
    }
    /// Gives every map entry a time-to-live.
    pub fn with_ttl(mut self, ttl: StateTtlConfig) -> Self {
        self.ttl = Some(ttl);
        self
    }
    /// The descriptor's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}
