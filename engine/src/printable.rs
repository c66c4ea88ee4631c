//! How records are rendered as text by `print`, `write_as_text` and `write_to_socket`.
//!
//! Flink prints `toString()`; Fjord uses the [`Printable`] trait, implemented for numbers,
//! strings, `bool`, `char`, `Option`, `Vec` and tuples in Flink's format: a tuple prints as
//! `(hello,1)`, like Flink's `Tuple2`. For your own types implement `Printable`, or use
//! [`printable_via_display!`](crate::printable_via_display) /
//! [`printable_via_debug!`](crate::printable_via_debug).

/// Renders a record as one line of text (without newline).
pub trait Printable {
    /// Appends the text of `self` to `out`.
    fn print_to(&self, out: &mut String);

    /// The text of `self`.
    fn to_text(&self) -> String {
        let mut s = String::new();
        self.print_to(&mut s);
        s
    }
}

/// Implements [`Printable`] with the type's `Display`.
#[macro_export]
macro_rules! printable_via_display {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::Printable for $t {
            fn print_to(&self, out: &mut String) {
                use std::fmt::Write as _;
                let _ = write!(out, "{}", self);
            }
        }
    )*};
}

/// Implements [`Printable`] with the type's `Debug`.
#[macro_export]
macro_rules! printable_via_debug {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::Printable for $t {
            fn print_to(&self, out: &mut String) {
                use std::fmt::Write as _;
                let _ = write!(out, "{:?}", self);
            }
        }
    )*};
}

crate::printable_via_display!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64, bool, char, String,
    str
);

impl<T: Printable + ?Sized> Printable for &T {
    fn print_to(&self, out: &mut String) {
        (**self).print_to(out)
    }
}

impl<T: Printable> Printable for Option<T> {
    /// `None` prints as `null`, as a Java null field would.
    fn print_to(&self, out: &mut String) {
        match self {
            Some(v) => v.print_to(out),
            None => out.push_str("null"),
        }
    }
}

impl<T: Printable> Printable for Vec<T> {
    fn print_to(&self, out: &mut String) {
        out.push('[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            v.print_to(out);
        }
        out.push(']');
    }
}

impl Printable for () {
    fn print_to(&self, out: &mut String) {
        out.push_str("()");
    }
}

macro_rules! printable_tuple {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: Printable),+> Printable for ($($name,)+) {
            fn print_to(&self, out: &mut String) {
                out.push('(');
                $(
                    if $idx > 0 { out.push(','); }
                    self.$idx.print_to(out);
                )+
                out.push(')');
            }
        }
    };
}

printable_tuple!(A 0);
printable_tuple!(A 0, B 1);
printable_tuple!(A 0, B 1, C 2);
printable_tuple!(A 0, B 1, C 2, D 3);
printable_tuple!(A 0, B 1, C 2, D 3, E 4);
printable_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
printable_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
printable_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_print_like_flink() {
        assert_eq!(("hello".to_string(), 3u64).to_text(), "(hello,3)");
        assert_eq!(
            (1, (2.5, 'x'), Some(true), None::<i32>).to_text(),
            "(1,(2.5,x),true,null)"
        );
        assert_eq!(vec![1, 2].to_text(), "[1, 2]");
    }
}
