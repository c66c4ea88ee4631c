//! Numeric functions: rounding on decimal digits as Flink's `BigDecimal` code does, and the
//! DOUBLE functions (`POWER`, `SQRT`, `EXP`, `LN`, `LOG10`, `LOG2`) as Java's `Math` does
//! (`LN(0)` is `-Infinity`, `SQRT(-1)` is `NaN`, no error; `LOG2` as `ln(x) / ln(2)`).

use super::{Func, int};
use crate::types::Value;

/// How `round` drops digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Half away from zero (`ROUND`, Java's `HALF_UP`).
    HalfUp,
    /// Toward zero (`TRUNCATE`).
    Down,
}

/// `CEIL`, `FLOOR` and `SIGN` of a number, in its own type.
pub fn unary_exact(f: Func, v: &Value) -> Value {
    match (f, v) {
        (Func::Sign, Value::Int(i)) => Value::Int(i.signum()),
        (Func::Sign, Value::BigInt(i)) => Value::BigInt(i.signum()),
        (Func::Sign, Value::Double(d)) => Value::Double(if *d == 0.0 || d.is_nan() {
            *d
        } else {
            d.signum()
        }),
        (Func::Sign, Value::TinyInt(i)) => Value::TinyInt(i.signum()),
        (Func::Sign, Value::SmallInt(i)) => Value::SmallInt(i.signum()),
        (Func::Sign, Value::Float(d)) => Value::Float(if *d == 0.0 || d.is_nan() {
            *d
        } else {
            d.signum()
        }),
        (Func::Ceil, Value::Float(d)) => Value::Float(d.ceil()),
        (Func::Floor, Value::Float(d)) => Value::Float(d.floor()),
        (Func::Ceil, Value::Double(d)) => Value::Double(d.ceil()),
        (Func::Floor, Value::Double(d)) => Value::Double(d.floor()),
        (_, other) => other.clone(),
    }
}

/// The DOUBLE functions of one or two numbers.
pub fn double(f: Func, v: &[Value]) -> Value {
    let x = |i: usize| v[i].as_f64().unwrap_or_else(|| int(&v[i]) as f64);
    Value::Double(match f {
        Func::Power => x(0).powf(x(1)),
        Func::Sqrt => x(0).sqrt(),
        Func::Exp => x(0).exp(),
        Func::Ln => x(0).ln(),
        Func::Log10 => x(0).log10(),
        // Flink computes `Math.log(x) / Math.log(2)`, which differs from a direct log2 in
        // the last digit for some x (LOG2(3) is 1.5849625007211563 there).
        Func::Log2 => x(0).ln() / 2_f64.ln(),
        // `LOG(base, x)`: Flink's `Math.log(x) / Math.log(base)`.
        Func::LogBase => x(1).ln() / x(0).ln(),
        _ => return Value::Null,
    })
}

/// `ROUND`/`TRUNCATE(x, digits)` in the type of `x`; a negative `digits` rounds to tens,
/// hundreds, .... A DOUBLE is rounded on its shortest decimal text (Java's
/// `BigDecimal.valueOf`), so `ROUND(2.675, 2)` is 2.68 as in Flink.
pub fn round(v: &Value, digits: i64, mode: Rounding) -> Value {
    match v {
        Value::TinyInt(i) => Value::TinyInt(round_integer(i64::from(*i), digits, mode) as i8),
        Value::SmallInt(i) => Value::SmallInt(round_integer(i64::from(*i), digits, mode) as i16),
        Value::Int(i) => Value::Int(round_integer(i64::from(*i), digits, mode) as i32),
        Value::BigInt(i) => Value::BigInt(round_integer(*i, digits, mode)),
        Value::Double(d) => Value::Double(round_double(*d, digits, mode)),
        other => other.clone(),
    }
}

fn round_integer(i: i64, digits: i64, mode: Rounding) -> i64 {
    if digits >= 0 {
        return i;
    }
    if digits < -18 {
        return 0;
    }
    let p = 10_i64.pow((-digits) as u32);
    let (q, r) = (i / p, i % p);
    let up = mode == Rounding::HalfUp && r.unsigned_abs() * 2 >= p.unsigned_abs();
    (q + if up { i.signum() } else { 0 }).wrapping_mul(p)
}

fn round_double(d: f64, digits: i64, mode: Rounding) -> f64 {
    if !d.is_finite() || d == 0.0 {
        return d;
    }
    // Shortest round-trip digits and exponent: d = 0.D1D2... * 10^(exp + 1).
    let sci = format!("{:e}", d.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let ds: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let keep = exp + 1 + digits;
    if keep >= ds.len() as i64 {
        return d;
    }
    let mut kept: u128 = 0;
    for &b in &ds[..keep.max(0) as usize] {
        kept = kept * 10 + u128::from(b - b'0');
    }
    let next = if keep >= 0 { ds[keep as usize] } else { b'0' };
    if mode == Rounding::HalfUp && next >= b'5' {
        kept += 1;
    }
    if kept == 0 {
        return 0.0;
    }
    let value: f64 = format!("{kept}e{}", exp + 1 - keep.max(0))
        .parse()
        .unwrap_or(0.0);
    if d < 0.0 { -value } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_decimal_and_half_away_from_zero() {
        let r = |d: f64, n| round_double(d, n, Rounding::HalfUp);
        assert_eq!(r(2.5, 0), 3.0);
        assert_eq!(r(-2.5, 0), -3.0);
        assert_eq!(r(2.675, 2), 2.68);
        assert_eq!(r(2.5, 1), 2.5);
        assert_eq!(r(0.4, 0), 0.0);
        assert_eq!(r(-0.4, 0).to_bits(), 0.0_f64.to_bits());
        assert_eq!(r(1234.5, -2), 1200.0);
        assert_eq!(r(0.004, 2), 0.0);
        assert_eq!(r(0.005, 2), 0.01);
        assert!(r(f64::NAN, 1).is_nan());
        let t = |d: f64, n| round_double(d, n, Rounding::Down);
        assert_eq!(t(2.75, 1), 2.7);
        assert_eq!(t(-2.75, 1), -2.7);
        assert_eq!(t(2.5, 0), 2.0);
        let i = |x, n, m| round_integer(x, n, m);
        assert_eq!(i(15, -1, Rounding::HalfUp), 20);
        assert_eq!(i(-15, -1, Rounding::HalfUp), -20);
        assert_eq!(i(-14, -1, Rounding::HalfUp), -10);
        assert_eq!(i(3, -1, Rounding::HalfUp), 0);
        assert_eq!(i(15, -1, Rounding::Down), 10);
        assert_eq!(i(15, 2, Rounding::Down), 15);
    }

    #[test]
    fn sign_ceil_floor_keep_the_type() {
        assert_eq!(unary_exact(Func::Sign, &Value::Int(-2)), Value::Int(-1));
        assert_eq!(
            unary_exact(Func::Sign, &Value::Double(0.0)),
            Value::Double(0.0)
        );
        assert_eq!(
            unary_exact(Func::Floor, &Value::Double(-2.5)),
            Value::Double(-3.0)
        );
        assert_eq!(unary_exact(Func::Ceil, &Value::Int(3)), Value::Int(3));
        assert_eq!(
            double(Func::Ln, &[Value::Double(0.0)]),
            Value::Double(f64::NEG_INFINITY)
        );
        assert_eq!(
            double(Func::Log2, &[Value::Int(3)]),
            Value::Double(1.5849625007211563)
        );
        // Base first, as in Flink; ln(1000) / ln(10) is not exactly 3 (Java gives the same).
        assert_eq!(
            double(Func::LogBase, &[Value::Int(2), Value::Int(8)]),
            Value::Double(3.0)
        );
        assert_eq!(
            double(Func::LogBase, &[Value::Int(10), Value::Double(1000.0)]),
            Value::Double(2.9999999999999996)
        );
        assert_eq!(
            double(Func::Power, &[Value::Int(3), Value::Int(2)]),
            Value::Double(9.0)
        );
    }
}
