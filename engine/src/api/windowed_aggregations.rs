//! The built-in window aggregations of Flink's `WindowedStream`: `sum`, `min`, `max`, `minBy`
//! and `maxBy` over a tuple field (or any field an accessor points at).
//!
//! They are window reductions with the same functions as the keyed stream's rolling
//! aggregations, so their results follow Flink's rules: `sum`, `min` and `max` emit the
//! window's first record with the field replaced by the aggregate; `min_by` and `max_by` emit
//! the whole record holding the extreme value, the earliest one on ties.

use crate::api::datastream::SingleOutputStreamOperator;
use crate::api::tuple::Field;
use crate::api::windowed::WindowedStream;
use crate::operators::rolling::{Extreme, ExtremeField, SumField};
use crate::types::{Data, Key};
use crate::windows::window::Window;

impl<T: Data, K: Key, W: Window> WindowedStream<T, K, W> {
    /// Sum of tuple field `I` per window (Flink's `sum(int)`); the other fields are those of
    /// the window's first record.
    pub fn sum<const I: usize>(&self) -> SingleOutputStreamOperator<T>
    where
        T: Field<I>,
        <T as Field<I>>::Type: Copy + std::ops::Add<Output = <T as Field<I>>::Type>,
    {
        self.sum_with(|t: &mut T| Field::<I>::field_mut(t))
    }

    /// Sum of the field the accessor points at, per window (Flink's `sum("field")`).
    pub fn sum_with<N, A>(&self, field: A) -> SingleOutputStreamOperator<T>
    where
        A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
        N: Copy + std::ops::Add<Output = N>,
    {
        self.reduce(SumField(field))
    }

    /// Minimum of tuple field `I` per window; the other fields are those of the window's
    /// first record (use [`min_by`](Self::min_by) for the record holding the minimum).
    pub fn min<const I: usize>(&self) -> SingleOutputStreamOperator<T>
    where
        T: Field<I>,
        <T as Field<I>>::Type: PartialOrd + Clone,
    {
        self.extreme_with(|t: &mut T| Field::<I>::field_mut(t), Extreme::Min, false)
    }

    /// Maximum of tuple field `I` per window; the other fields are those of the window's
    /// first record.
    pub fn max<const I: usize>(&self) -> SingleOutputStreamOperator<T>
    where
        T: Field<I>,
        <T as Field<I>>::Type: PartialOrd + Clone,
    {
        self.extreme_with(|t: &mut T| Field::<I>::field_mut(t), Extreme::Max, false)
    }

    /// The record with the smallest tuple field `I` per window (the earliest on ties).
    pub fn min_by<const I: usize>(&self) -> SingleOutputStreamOperator<T>
    where
        T: Field<I>,
        <T as Field<I>>::Type: PartialOrd + Clone,
    {
        self.extreme_with(|t: &mut T| Field::<I>::field_mut(t), Extreme::Min, true)
    }

    /// The record with the largest tuple field `I` per window (the earliest on ties).
    pub fn max_by<const I: usize>(&self) -> SingleOutputStreamOperator<T>
    where
        T: Field<I>,
        <T as Field<I>>::Type: PartialOrd + Clone,
    {
        self.extreme_with(|t: &mut T| Field::<I>::field_mut(t), Extreme::Max, true)
    }

    /// `min` over the field the accessor points at.
    pub fn min_with<N, A>(&self, field: A) -> SingleOutputStreamOperator<T>
    where
        N: PartialOrd + Clone,
        A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
    {
        self.extreme_with(field, Extreme::Min, false)
    }

    /// `max` over the field the accessor points at.
    pub fn max_with<N, A>(&self, field: A) -> SingleOutputStreamOperator<T>
    where
        N: PartialOrd + Clone,
        A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
    {
        self.extreme_with(field, Extreme::Max, false)
    }

    /// `min_by` over the field the accessor points at.
    pub fn min_by_with<N, A>(&self, field: A) -> SingleOutputStreamOperator<T>
    where
        N: PartialOrd + Clone,
        A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
    {
        self.extreme_with(field, Extreme::Min, true)
    }

    /// `max_by` over the field the accessor points at.
    pub fn max_by_with<N, A>(&self, field: A) -> SingleOutputStreamOperator<T>
    where
        N: PartialOrd + Clone,
        A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
    {
        self.extreme_with(field, Extreme::Max, true)
    }

    fn extreme_with<N, A>(
        &self,
        field: A,
        extreme: Extreme,
        whole_record: bool,
    ) -> SingleOutputStreamOperator<T>
    where
        N: PartialOrd + Clone,
        A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
    {
        self.reduce(ExtremeField {
            field,
            extreme,
            whole_record,
        })
    }
}
