//! Flink's built-in field aggregations — `sum`, `min`, `max`, `minBy`, `maxBy` over a tuple
//! field, or over any field an accessor points at — written once for the two streams that
//! have them: the keyed stream (rolling, one result per record) and the windowed stream (one
//! result per window firing).
//!
//! [`field_aggregations!`] expands to the public methods inside the stream's `impl` block;
//! the stream provides `fn field_aggregate<F: ReduceFunction<T> + Clone>(&self, f: F)`, which
//! applies the reduction its way. `sum`, `min` and `max` keep the first record's other fields;
//! `min_by` and `max_by` emit the whole record holding the extreme (the earliest on ties).

/// The field aggregation methods; `$scope` completes their docs ("so far", "per window").
macro_rules! field_aggregations {
    ($scope:literal, $first:literal) => {
        #[doc = concat!("Sum of tuple field `I` ", $scope, " (Flink's `sum(I)`); the other fields are those of ", $first, ".")]
        pub fn sum<const I: usize>(&self) -> SingleOutputStreamOperator<T>
        where
            T: Field<I>,
            <T as Field<I>>::Type: Copy + std::ops::Add<Output = <T as Field<I>>::Type>,
        {
            self.sum_with(|t: &mut T| Field::<I>::field_mut(t))
        }

        #[doc = concat!("Sum of the field the accessor points at ", $scope, " (Flink's `sum(\"field\")`).")]
        pub fn sum_with<N, A>(&self, field: A) -> SingleOutputStreamOperator<T>
        where
            A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
            N: Copy + std::ops::Add<Output = N>,
        {
            self.field_aggregate($crate::operators::rolling::SumField(field))
        }

        #[doc = concat!("Minimum of tuple field `I` ", $scope, "; the other fields are those of ", $first, " (use `min_by` for the record holding the minimum).")]
        pub fn min<const I: usize>(&self) -> SingleOutputStreamOperator<T>
        where
            T: Field<I>,
            <T as Field<I>>::Type: PartialOrd + Clone,
        {
            self.min_with(|t: &mut T| Field::<I>::field_mut(t))
        }

        #[doc = concat!("Maximum of tuple field `I` ", $scope, "; the other fields are those of ", $first, ".")]
        pub fn max<const I: usize>(&self) -> SingleOutputStreamOperator<T>
        where
            T: Field<I>,
            <T as Field<I>>::Type: PartialOrd + Clone,
        {
            self.max_with(|t: &mut T| Field::<I>::field_mut(t))
        }

        #[doc = concat!("The whole record with the smallest tuple field `I` ", $scope, " (the earliest on ties).")]
        pub fn min_by<const I: usize>(&self) -> SingleOutputStreamOperator<T>
        where
            T: Field<I>,
            <T as Field<I>>::Type: PartialOrd + Clone,
        {
            self.min_by_with(|t: &mut T| Field::<I>::field_mut(t))
        }

        #[doc = concat!("The whole record with the largest tuple field `I` ", $scope, " (the earliest on ties).")]
        pub fn max_by<const I: usize>(&self) -> SingleOutputStreamOperator<T>
        where
            T: Field<I>,
            <T as Field<I>>::Type: PartialOrd + Clone,
        {
            self.max_by_with(|t: &mut T| Field::<I>::field_mut(t))
        }

        /// `min` over the field the accessor points at.
        pub fn min_with<N, A>(&self, field: A) -> SingleOutputStreamOperator<T>
        where
            N: PartialOrd + Clone,
            A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
        {
            self.extreme(field, $crate::operators::rolling::Extreme::Min, false)
        }

        /// `max` over the field the accessor points at.
        pub fn max_with<N, A>(&self, field: A) -> SingleOutputStreamOperator<T>
        where
            N: PartialOrd + Clone,
            A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
        {
            self.extreme(field, $crate::operators::rolling::Extreme::Max, false)
        }

        /// `min_by` over the field the accessor points at.
        pub fn min_by_with<N, A>(&self, field: A) -> SingleOutputStreamOperator<T>
        where
            N: PartialOrd + Clone,
            A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
        {
            self.extreme(field, $crate::operators::rolling::Extreme::Min, true)
        }

        /// `max_by` over the field the accessor points at.
        pub fn max_by_with<N, A>(&self, field: A) -> SingleOutputStreamOperator<T>
        where
            N: PartialOrd + Clone,
            A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
        {
            self.extreme(field, $crate::operators::rolling::Extreme::Max, true)
        }

        fn extreme<N, A>(
            &self,
            field: A,
            extreme: $crate::operators::rolling::Extreme,
            whole_record: bool,
        ) -> SingleOutputStreamOperator<T>
        where
            N: PartialOrd + Clone,
            A: Fn(&mut T) -> &mut N + Clone + Send + 'static,
        {
            self.field_aggregate($crate::operators::rolling::ExtremeField {
                field,
                extreme,
                whole_record,
            })
        }
    };
}

pub(crate) use field_aggregations;
