//! The handles user functions read and write keyed state through: `ValueState`, `ListState`,
//! `ReducingState`, `AggregatingState` and `MapState`, each on the current key (and window).

#![allow(clippy::type_complexity)] // closures and nested maps read clearer inline here

use super::*;
use parking_lot::Mutex;

/// Implements `Clone` for state handles: every handle has the backend handle `h`, its state
/// `id`, namespace `ns` and `ttl`, plus one field of its own (named after the `.`).
macro_rules! impl_handle_clone {
    ($($t:ident<$($g:ident),+> . $extra:ident),+ $(,)?) => {$(
        impl<$($g),+> Clone for $t<$($g),+> {
            fn clone(&self) -> Self {
                $t {
                    h: self.h.clone(),
                    id: self.id,
                    ns: self.ns.clone(),
                    ttl: self.ttl,
                    $extra: self.$extra.clone(),
                }
            }
        }
    )+};
}

impl_handle_clone!(
    ValueState<V>._v,
    ListState<V>._v,
    ReducingState<V>.reduce,
    AggregatingState<IN, ACC, OUT>.f,
    MapState<UK, UV>._t,
);

/// Background cleanup of a state holding one [`Stamped`] value per key: expired values go.
fn stamped_cleanup<V: 'static>(ttl: Option<StateTtlConfig>) -> CleanupFn {
    Box::new(move |v, now| {
        v.downcast_ref::<Stamped<V>>()
            .is_some_and(|s| s.expired(ttl.as_ref(), now))
    })
}

/// One value per key (Flink's `ValueState`).
pub struct ValueState<V> {
    pub(super) h: KeyedStateHandle,
    pub(super) id: StateId,
    pub(super) ns: Option<Vec<u8>>,
    pub(super) ttl: Option<StateTtlConfig>,
    pub(super) _v: PhantomData<fn() -> V>,
}

impl<V: Data> ValueState<V> {
    pub(crate) fn new(h: &KeyedStateHandle, d: &ValueStateDescriptor<V>) -> Result<Self> {
        let id =
            h.register::<Stamped<V>>(&d.name, d.ttl.as_ref(), || stamped_cleanup::<V>(d.ttl))?;
        Ok(ValueState {
            h: h.clone(),
            id,
            ns: None,
            ttl: d.ttl,
            _v: PhantomData,
        })
    }

    /// The current key's value, or `None` if it has none (or it expired).
    pub fn value(&self) -> Option<V> {
        get_stamped!(self, V)
    }

    /// Sets the current key's value.
    pub fn update(&self, value: V) {
        self.h.with(|inner| {
            let ts = now_if_ttl!(inner, self.ttl);
            inner
                .backend
                .put(self.id, ns!(self, inner), Box::new(Stamped { value, ts }));
        })
    }

    /// Removes the current key's value.
    pub fn clear(&self) {
        self.h
            .with(|inner| inner.backend.remove(self.id, ns!(self, inner)));
    }
}

/// A list of values per key (Flink's `ListState`); with TTL, every element expires on its own.
pub struct ListState<V> {
    pub(super) h: KeyedStateHandle,
    pub(super) id: StateId,
    pub(super) ns: Option<Vec<u8>>,
    pub(super) ttl: Option<StateTtlConfig>,
    pub(super) _v: PhantomData<fn() -> V>,
}

impl<V: Data> ListState<V> {
    pub(crate) fn new(h: &KeyedStateHandle, d: &ListStateDescriptor<V>) -> Result<Self> {
        let ttl = d.ttl;
        let cleanup = || -> CleanupFn {
            Box::new(move |v, now| match v.downcast_mut::<Vec<Stamped<V>>>() {
                Some(list) => {
                    list.retain(|s| !s.expired(ttl.as_ref(), now));
                    list.is_empty()
                }
                None => false,
            })
        };
        let id = h.register::<Vec<Stamped<V>>>(&d.name, d.ttl.as_ref(), cleanup)?;
        Ok(ListState {
            h: h.clone(),
            id,
            ns: None,
            ttl: d.ttl,
            _v: PhantomData,
        })
    }

    /// The current key's elements in insertion order (empty if none).
    pub fn get(&self) -> Vec<V> {
        self.h.with(|inner| {
            let now = now_if_ttl!(inner, self.ttl);
            let Some(list) = inner
                .backend
                .get_mut(self.id, ns!(self, inner))
                .and_then(|v| v.downcast_mut::<Vec<Stamped<V>>>())
            else {
                return Vec::new();
            };
            let mut out = Vec::with_capacity(list.len());
            list.retain_mut(|s| {
                let (v, remove) = read_stamped(s, self.ttl.as_ref(), now);
                out.extend(v);
                !remove
            });
            if list.is_empty() {
                inner.backend.remove(self.id, ns!(self, inner));
            }
            out
        })
    }

    /// Appends an element.
    pub fn add(&self, value: V) {
        self.add_all(std::iter::once(value));
    }

    /// Appends elements (without reading the stored list where the backend can:
    /// [`KeyedStateBackend::append`](crate::state::KeyedStateBackend::append)).
    pub fn add_all(&self, values: impl IntoIterator<Item = V>) {
        self.h.with(|inner| {
            let ts = now_if_ttl!(inner, self.ttl);
            let list: Vec<Stamped<V>> = values
                .into_iter()
                .map(|value| Stamped { value, ts })
                .collect();
            if !list.is_empty() {
                inner
                    .backend
                    .append(self.id, ns!(self, inner), Box::new(list), extend_list::<V>);
            }
        })
    }

    /// Replaces the elements.
    pub fn update(&self, values: impl IntoIterator<Item = V>) {
        self.clear();
        self.add_all(values);
    }

    /// Removes all elements.
    pub fn clear(&self) {
        self.h
            .with(|inner| inner.backend.remove(self.id, ns!(self, inner)));
    }
}

/// [`ExtendFn`](crate::state::backend::ExtendFn) of a `ListState<V>`.
fn extend_list<V: Data>(list: &mut (dyn Any + Send), more: StateValue) {
    let list = list
        .downcast_mut::<Vec<Stamped<V>>>()
        .expect("a list state stores a Vec of its elements");
    let more = more
        .downcast::<Vec<Stamped<V>>>()
        .expect("a list state appends a Vec of its elements");
    list.extend(*more);
}

/// A value per key that added values are reduced into (Flink's `ReducingState`).
pub struct ReducingState<V> {
    pub(super) h: KeyedStateHandle,
    pub(super) id: StateId,
    pub(super) ns: Option<Vec<u8>>,
    pub(super) ttl: Option<StateTtlConfig>,
    pub(super) reduce: SharedReduce<V>,
}

impl<V: Data> ReducingState<V> {
    pub(crate) fn new(h: &KeyedStateHandle, d: &ReducingStateDescriptor<V>) -> Result<Self> {
        let id =
            h.register::<Stamped<V>>(&d.name, d.ttl.as_ref(), || stamped_cleanup::<V>(d.ttl))?;
        Ok(ReducingState {
            h: h.clone(),
            id,
            ns: None,
            ttl: d.ttl,
            reduce: d.reduce.clone(),
        })
    }

    /// The reduced value of the current key.
    pub fn get(&self) -> Option<V> {
        get_stamped!(self, V)
    }

    /// Reduces a value into the current key's value.
    pub fn add(&self, value: V) {
        self.h.with(|inner| {
            let now = now_if_ttl!(inner, self.ttl);
            let previous = inner
                .backend
                .remove(self.id, ns!(self, inner))
                .and_then(|b| b.downcast::<Stamped<V>>().ok())
                .filter(|s| !s.expired(self.ttl.as_ref(), now));
            let value = match previous {
                Some(s) => (self.reduce)(s.value, value),
                None => value,
            };
            inner.backend.put(
                self.id,
                ns!(self, inner),
                Box::new(Stamped { value, ts: now }),
            );
        })
    }

    /// Removes the current key's value.
    pub fn clear(&self) {
        self.h
            .with(|inner| inner.backend.remove(self.id, ns!(self, inner)));
    }

    /// Merges the values of `sources` namespaces into the current namespace (used when
    /// windows merge).
    pub(crate) fn merge_namespaces(&self, sources: &[Vec<u8>]) {
        self.h.with(|inner| {
            let mut acc: Option<Stamped<V>> = None;
            for ns in sources {
                if let Some(s) = inner
                    .backend
                    .remove(self.id, ns)
                    .and_then(|b| b.downcast::<Stamped<V>>().ok())
                {
                    acc = Some(match acc {
                        Some(a) => Stamped {
                            value: (self.reduce)(a.value, s.value),
                            ts: a.ts.max(s.ts),
                        },
                        None => *s,
                    });
                }
            }
            if let Some(a) = acc {
                let target = ns!(self, inner).to_vec();
                let merged = match inner
                    .backend
                    .remove(self.id, &target)
                    .and_then(|b| b.downcast::<Stamped<V>>().ok())
                {
                    Some(t) => Stamped {
                        value: (self.reduce)(t.value, a.value),
                        ts: t.ts.max(a.ts),
                    },
                    None => a,
                };
                inner.backend.put(self.id, &target, Box::new(merged));
            }
        })
    }
}

/// An accumulator per key fed by an [`AggregateFunction`] (Flink's `AggregatingState`).
pub struct AggregatingState<IN, ACC, OUT> {
    pub(super) h: KeyedStateHandle,
    pub(super) id: StateId,
    pub(super) ns: Option<Vec<u8>>,
    pub(super) ttl: Option<StateTtlConfig>,
    pub(super) f: Arc<Mutex<Box<dyn AggregateFunction<IN, ACC, OUT>>>>,
}

impl<IN: 'static, ACC: Data, OUT: 'static> AggregatingState<IN, ACC, OUT> {
    pub(crate) fn new<F: AggregateFunction<IN, ACC, OUT> + Clone>(
        h: &KeyedStateHandle,
        d: &AggregatingStateDescriptor<IN, ACC, OUT, F>,
    ) -> Result<Self> {
        let id =
            h.register::<Stamped<ACC>>(&d.name, d.ttl.as_ref(), || stamped_cleanup::<ACC>(d.ttl))?;
        Ok(AggregatingState {
            h: h.clone(),
            id,
            ns: None,
            ttl: d.ttl,
            f: Arc::new(Mutex::new(Box::new(d.f.clone()))),
        })
    }

    /// The aggregate's result for the current key, if anything was added.
    pub fn get(&self) -> Option<OUT> {
        let acc = get_stamped!(self, ACC)?;
        Some(self.f.lock().get_result(&acc))
    }

    /// Adds an input to the current key's accumulator.
    pub fn add(&self, value: IN) {
        let mut f = self.f.lock();
        self.h.with(|inner| {
            let now = now_if_ttl!(inner, self.ttl);
            let previous = inner
                .backend
                .remove(self.id, ns!(self, inner))
                .and_then(|b| b.downcast::<Stamped<ACC>>().ok())
                .filter(|s| !s.expired(self.ttl.as_ref(), now));
            let acc = previous.map_or_else(|| f.create_accumulator(), |s| s.value);
            let value = f.add(value, acc);
            inner.backend.put(
                self.id,
                ns!(self, inner),
                Box::new(Stamped { value, ts: now }),
            );
        })
    }

    /// Removes the current key's accumulator.
    pub fn clear(&self) {
        self.h
            .with(|inner| inner.backend.remove(self.id, ns!(self, inner)));
    }
}

/// A map per key (Flink's `MapState`); with TTL, every entry expires on its own.
pub struct MapState<UK, UV> {
    pub(super) h: KeyedStateHandle,
    pub(super) id: StateId,
    pub(super) ns: Option<Vec<u8>>,
    pub(super) ttl: Option<StateTtlConfig>,
    pub(super) _t: PhantomData<fn() -> (UK, UV)>,
}

type StoredMap<UK, UV> = FastMap<UK, Stamped<UV>>;

impl<UK: Key, UV: Data> MapState<UK, UV> {
    pub(crate) fn new(h: &KeyedStateHandle, d: &MapStateDescriptor<UK, UV>) -> Result<Self> {
        let ttl = d.ttl;
        let cleanup = || -> CleanupFn {
            Box::new(move |v, now| match v.downcast_mut::<StoredMap<UK, UV>>() {
                Some(m) => {
                    m.retain(|_, s| !s.expired(ttl.as_ref(), now));
                    m.is_empty()
                }
                None => false,
            })
        };
        let id = h.register::<StoredMap<UK, UV>>(&d.name, d.ttl.as_ref(), cleanup)?;
        Ok(MapState {
            h: h.clone(),
            id,
            ns: None,
            ttl: d.ttl,
            _t: PhantomData,
        })
    }

    fn with_map<R>(
        &self,
        create: bool,
        f: impl FnOnce(&mut StoredMap<UK, UV>, Timestamp) -> R,
    ) -> Option<R> {
        self.h.with(|inner| {
            let now = now_if_ttl!(inner, self.ttl);
            if create && inner.backend.get_mut(self.id, ns!(self, inner)).is_none() {
                inner.backend.put(
                    self.id,
                    ns!(self, inner),
                    Box::new(StoredMap::<UK, UV>::default()),
                );
            }
            let m = inner
                .backend
                .get_mut(self.id, ns!(self, inner))?
                .downcast_mut::<StoredMap<UK, UV>>()?;
            let r = f(m, now);
            if m.is_empty() {
                inner.backend.remove(self.id, ns!(self, inner));
            }
            Some(r)
        })
    }

    /// The value under `key` for the current key.
    pub fn get(&self, key: &UK) -> Option<UV> {
        let ttl = self.ttl;
        self.with_map(false, |m, now| {
            let s = m.get_mut(key)?;
            let (v, remove) = read_stamped(s, ttl.as_ref(), now);
            if remove {
                m.remove(key);
            }
            v
        })
        .flatten()
    }

    /// True if `key` has a (live) value.
    pub fn contains(&self, key: &UK) -> bool {
        self.get(key).is_some()
    }

    /// Sets the value under `key`.
    pub fn put(&self, key: UK, value: UV) {
        self.with_map(true, |m, ts| {
            m.insert(key, Stamped { value, ts });
        });
    }

    /// Sets several entries.
    pub fn put_all(&self, entries: impl IntoIterator<Item = (UK, UV)>) {
        self.with_map(true, |m, ts| {
            for (key, value) in entries {
                m.insert(key, Stamped { value, ts });
            }
        });
    }

    /// Removes `key`.
    pub fn remove(&self, key: &UK) {
        self.with_map(false, |m, _| m.remove(key));
    }

    /// All live entries (in no particular order).
    pub fn entries(&self) -> Vec<(UK, UV)> {
        let ttl = self.ttl;
        self.with_map(false, |m, now| {
            let mut out = Vec::with_capacity(m.len());
            m.retain(|k, s| {
                let (v, remove) = read_stamped(s, ttl.as_ref(), now);
                if let Some(v) = v {
                    out.push((k.clone(), v));
                }
                !remove
            });
            out
        })
        .unwrap_or_default()
    }

    /// All live keys.
    pub fn keys(&self) -> Vec<UK> {
        self.entries().into_iter().map(|(k, _)| k).collect()
    }

    /// All live values.
    pub fn values(&self) -> Vec<UV> {
        self.entries().into_iter().map(|(_, v)| v).collect()
    }

    /// True when the current key's map has no live entry.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// Removes the whole map of the current key.
    pub fn clear(&self) {
        self.h
            .with(|inner| inner.backend.remove(self.id, ns!(self, inner)));
    }
}
