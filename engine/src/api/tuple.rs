//! Positional field access on tuples, for `project`, `sum::<1>()`, `min_by::<0>()` and
//! friends (Flink addresses tuple fields by position the same way).

/// Access to field `I` of a tuple.
pub trait Field<const I: usize> {
    /// The field's type.
    type Type;
    /// A reference to the field.
    fn field(&self) -> &Self::Type;
    /// A mutable reference to the field.
    fn field_mut(&mut self) -> &mut Self::Type;
}

macro_rules! tuple_field {
    (($($all:ident),+) $idx:tt $name:ident) => {
        impl<$($all),+> Field<$idx> for ($($all,)+) {
            type Type = $name;
            #[inline]
            fn field(&self) -> &$name {
                &self.$idx
            }
            #[inline]
            fn field_mut(&mut self) -> &mut $name {
                &mut self.$idx
            }
        }
    };
}

macro_rules! tuple_fields {
    ($all:tt $($idx:tt $name:ident),+) => {
        $( tuple_field!($all $idx $name); )+
    };
}

tuple_fields!((A) 0 A);
tuple_fields!((A, B) 0 A, 1 B);
tuple_fields!((A, B, C) 0 A, 1 B, 2 C);
tuple_fields!((A, B, C, D) 0 A, 1 B, 2 C, 3 D);
tuple_fields!((A, B, C, D, E) 0 A, 1 B, 2 C, 3 D, 4 E);
tuple_fields!((A, B, C, D, E, F) 0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
tuple_fields!((A, B, C, D, E, F, G) 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
tuple_fields!((A, B, C, D, E, F, G, H) 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_by_position() {
        let mut t = ("a", 2, 3.5);
        assert_eq!(*Field::<0>::field(&t), "a");
        *Field::<1>::field_mut(&mut t) += 1;
        assert_eq!(t.1, 3);
    }
}
