//! `DECIMAL(p, s)` values as Flink computes them: an unscaled `i128` (38 digits fit) and a
//! scale, exact arithmetic with intermediate results in arbitrary precision (`num-bigint`),
//! rounding `HALF_UP`, a value that needs more than its type's precision is NULL (Flink's
//! `DecimalData.fromBigDecimal`), and the result types of Flink's `LogicalTypeMerging`.

use num_bigint::{BigInt, Sign};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// The largest precision of a DECIMAL (Flink's and Calcite's).
pub const MAX_PRECISION: u8 = 38;

/// A DECIMAL value: `unscaled × 10^-scale`. Its precision is its type's, not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Decimal {
    /// The digits as an integer.
    pub unscaled: i128,
    /// The number of digits after the point.
    pub scale: u8,
}

fn pow10(n: u32) -> BigInt {
    BigInt::from(10u8).pow(n)
}

/// The number of decimal digits of `|v|` (1 for 0), as BigDecimal's precision.
fn digits(v: &BigInt) -> u32 {
    let s = v.magnitude().to_string();
    s.len() as u32
}

/// `num / den` rounded half away from zero (`den` is not zero).
fn div_half_up(num: &BigInt, den: &BigInt) -> BigInt {
    let q = num / den;
    let r = num - &q * den;
    if r.sign() == Sign::NoSign {
        return q;
    }
    let twice = r.magnitude() + r.magnitude();
    if &twice >= den.magnitude() {
        if (num.sign() == Sign::Minus) != (den.sign() == Sign::Minus) {
            q - BigInt::from(1)
        } else {
            q + BigInt::from(1)
        }
    } else {
        q
    }
}

/// `unscaled × 10^-scale` (any scale, even negative) rounded `HALF_UP` to `to_scale`, as a
/// DECIMAL(precision, to_scale); `None` when it needs more than `precision` digits.
pub fn fit(unscaled: &BigInt, scale: i64, precision: u8, to_scale: u8) -> Option<Decimal> {
    let shift = i64::from(to_scale) - scale;
    let v = if shift >= 0 {
        unscaled * pow10(shift as u32)
    } else {
        div_half_up(unscaled, &pow10((-shift) as u32))
    };
    if v.sign() != Sign::NoSign && digits(&v) > u32::from(precision) {
        return None;
    }
    Some(Decimal {
        unscaled: i128::try_from(v).ok()?,
        scale: to_scale,
    })
}

/// Why a text is no DECIMAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotANumber;

/// Reads text as Java's `new BigDecimal(text.trim())` does (`-1.5`, `.5`, `1e3`, `+2.50E-1`)
/// into an unscaled integer and a scale.
///
/// # Errors
/// Text that is not a number.
pub fn parse_exact(text: &str) -> Result<(BigInt, i64), NotANumber> {
    let t = text.trim();
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i64>().map_err(|_| NotANumber)?),
        None => (t, 0),
    };
    let (sign, body) = match mantissa.as_bytes().first() {
        Some(b'-') => ("-", &mantissa[1..]),
        Some(b'+') => ("", &mantissa[1..]),
        _ => ("", mantissa),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(NotANumber);
    }
    let unscaled: BigInt = format!("{sign}{int}{frac}")
        .parse()
        .map_err(|_| NotANumber)?;
    Ok((unscaled, frac.len() as i64 - exp))
}

/// Reads text into a DECIMAL(p, s): `Ok(None)` when it does not fit (NULL in Flink).
///
/// # Errors
/// Text that is not a number.
pub fn parse(text: &str, precision: u8, scale: u8) -> Result<Option<Decimal>, NotANumber> {
    let (u, s) = parse_exact(text)?;
    Ok(fit(&u, s, precision, scale))
}

/// The DECIMAL(p, s) of a DOUBLE as Flink casts it (`BigDecimal.valueOf`: on Java's
/// shortest text of the double, so 2.675 is 2.675); NULL for NaN, infinities and overflow.
pub fn from_f64(d: f64, precision: u8, scale: u8) -> Option<Decimal> {
    if !d.is_finite() {
        return None;
    }
    parse(&crate::types::format_double(d), precision, scale)
        .ok()
        .flatten()
}

/// The DECIMAL(p, s) of an integer; NULL when it has more than `p - s` digits.
pub fn from_i64(i: i64, precision: u8, scale: u8) -> Option<Decimal> {
    fit(&BigInt::from(i), 0, precision, scale)
}

impl Decimal {
    fn big(self) -> BigInt {
        BigInt::from(self.unscaled)
    }

    /// This value in DECIMAL(p, s), rounded `HALF_UP`; `None` if it does not fit.
    pub fn rescale(self, precision: u8, scale: u8) -> Option<Decimal> {
        fit(&self.big(), i64::from(self.scale), precision, scale)
    }

    /// The integer part (toward zero), as Java's `BigDecimal.longValue` (low 64 bits).
    pub fn to_i64(self) -> i64 {
        let p = 10i128.pow(u32::from(self.scale));
        (self.unscaled / p) as i64
    }

    /// The nearest DOUBLE (parsed from the exact text, so correctly rounded).
    pub fn to_f64(self) -> f64 {
        self.to_plain_string().parse().unwrap_or(f64::NAN)
    }

    /// Plain text, all `scale` digits after the point (`BigDecimal.toPlainString`; what
    /// Flink's `CAST(d AS STRING)` writes).
    pub fn to_plain_string(self) -> String {
        let neg = self.unscaled < 0;
        let digits = self.unscaled.unsigned_abs().to_string();
        let scale = usize::from(self.scale);
        let mut out = String::new();
        if neg {
            out.push('-');
        }
        if scale == 0 {
            out.push_str(&digits);
        } else if digits.len() > scale {
            let (i, f) = digits.split_at(digits.len() - scale);
            out.push_str(i);
            out.push('.');
            out.push_str(f);
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat(scale - digits.len()));
            out.push_str(&digits);
        }
        out
    }

    /// Java's `BigDecimal.toString`: plain unless the adjusted exponent is below -6
    /// (`1E-7`, `1.5E-8`), as Flink's print connector shows it.
    pub fn to_java_string(self) -> String {
        if self.scale == 0 || self.adjusted_exponent(i64::from(self.scale)) >= -6 {
            return self.to_plain_string();
        }
        java_scientific(self.unscaled, i64::from(self.scale))
    }

    /// As Flink's CSV and JSON formats write a DECIMAL (Jackson's normalized `DecimalNode`:
    /// `stripTrailingZeros`, then `BigDecimal.toString`): `12.50` is `12.5`, `20.00` is
    /// `2E+1`, zero is `0`, `0.0000000015` is `1.5E-9`.
    pub fn to_format_string(self) -> String {
        if self.unscaled == 0 {
            return "0".into();
        }
        let (mut unscaled, mut scale) = (self.unscaled, i64::from(self.scale));
        while unscaled % 10 == 0 {
            unscaled /= 10;
            scale -= 1;
        }
        let d = Decimal {
            unscaled,
            scale: scale.max(0) as u8,
        };
        if scale == 0 || (scale > 0 && d.adjusted_exponent(scale) >= -6) {
            return d.to_plain_string();
        }
        java_scientific(unscaled, scale)
    }

    fn adjusted_exponent(self, scale: i64) -> i64 {
        self.unscaled.unsigned_abs().to_string().len() as i64 - 1 - scale
    }

    /// Orders by value (scales may differ).
    pub fn cmp_value(self, other: Decimal) -> Ordering {
        let s = self.scale.max(other.scale);
        let a = self.big() * pow10(u32::from(s - self.scale));
        let b = other.big() * pow10(u32::from(s - other.scale));
        a.cmp(&b)
    }
}

/// `BigDecimal.toString`'s scientific layout: `d.dddE-n`, `dE+n`.
fn java_scientific(unscaled: i128, scale: i64) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let adjusted = digits.len() as i64 - 1 - scale;
    let sign = if unscaled < 0 { "-" } else { "" };
    let (first, rest) = digits.split_at(1);
    let point = if rest.is_empty() { "" } else { "." };
    let plus = if adjusted > 0 { "+" } else { "" };
    format!("{sign}{first}{point}{rest}E{plus}{adjusted}")
}

/// A DECIMAL arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%` / `MOD` (the sign of the dividend, as Java's `BigDecimal.remainder`)
    Rem,
}

/// `a op b` in DECIMAL(precision, scale), rounded `HALF_UP`; `Ok(None)` when the result
/// does not fit (NULL, as in Flink).
///
/// # Errors
/// Division or remainder by zero (Flink fails the job).
pub fn arith(
    op: DecimalOp,
    a: Decimal,
    b: Decimal,
    precision: u8,
    scale: u8,
) -> Result<Option<Decimal>, &'static str> {
    let (x, y) = (a.big(), b.big());
    let (sa, sb) = (i64::from(a.scale), i64::from(b.scale));
    let common = sa.max(sb);
    let align = |v: &BigInt, s: i64| v * pow10((common - s) as u32);
    let exact: (BigInt, i64) = match op {
        DecimalOp::Add => (align(&x, sa) + align(&y, sb), common),
        DecimalOp::Sub => (align(&x, sa) - align(&y, sb), common),
        DecimalOp::Mul => (x * y, sa + sb),
        DecimalOp::Rem => {
            if y.sign() == Sign::NoSign {
                return Err("division by zero");
            }
            (align(&x, sa) % align(&y, sb), common)
        }
        DecimalOp::Div => {
            if y.sign() == Sign::NoSign {
                return Err("division by zero");
            }
            // (x / 10^sa) / (y / 10^sb) at `scale`: x * 10^(sb + scale) / (y * 10^sa).
            let s = i64::from(scale);
            let num = x * pow10((sb + s) as u32);
            let den = y * pow10(sa as u32);
            return Ok(fit(&div_half_up(&num, &den), s, precision, scale));
        }
    };
    Ok(fit(&exact.0, exact.1, precision, scale))
}

/// `sum / n` in DECIMAL(precision, scale), rounded `HALF_UP` (AVG).
pub fn average(sum: Decimal, n: i64, precision: u8, scale: u8) -> Option<Decimal> {
    let count = Decimal {
        unscaled: i128::from(n),
        scale: 0,
    };
    arith(DecimalOp::Div, sum, count, precision, scale)
        .ok()
        .flatten()
}

/// Flink's `adjustPrecisionScale`: a precision above 38 gives up scale, keeping at least
/// `min(scale, 6)` digits after the point.
fn adjust(precision: u32, scale: u32) -> (u8, u8) {
    let max = u32::from(MAX_PRECISION);
    if precision <= max {
        return (precision as u8, scale as u8);
    }
    let int_digits = precision - scale;
    let min_scale = scale.min(6);
    let scale = max.saturating_sub(int_digits).max(min_scale);
    (MAX_PRECISION, scale as u8)
}

/// The result type of `DECIMAL(p1, s1) op DECIMAL(p2, s2)` (Flink's `LogicalTypeMerging`).
pub fn result_type(op: DecimalOp, (p1, s1): (u8, u8), (p2, s2): (u8, u8)) -> (u8, u8) {
    let (p1, s1, p2, s2) = (u32::from(p1), u32::from(s1), u32::from(p2), u32::from(s2));
    match op {
        DecimalOp::Add | DecimalOp::Sub => {
            let s = s1.max(s2);
            adjust((p1 - s1).max(p2 - s2) + s + 1, s)
        }
        DecimalOp::Mul => adjust(p1 + p2 + 1, s1 + s2),
        DecimalOp::Div => {
            let s = 6.max(s1 + p2 + 1);
            adjust(p1 - s1 + s2 + s, s)
        }
        DecimalOp::Rem => {
            let s = s1.max(s2);
            adjust((p1 - s1).min(p2 - s2) + s, s)
        }
    }
}

/// The common type of two DECIMALs (comparisons, CASE, COALESCE): enough integer digits
/// and scale for both.
pub fn common_type((p1, s1): (u8, u8), (p2, s2): (u8, u8)) -> (u8, u8) {
    let s = s1.max(s2);
    let p = (p1 - s1).max(p2 - s2) + s;
    adjust(u32::from(p), u32::from(s))
}

/// The type of `SUM` over DECIMAL(p, s): DECIMAL(38, s).
pub fn sum_type(scale: u8) -> (u8, u8) {
    (MAX_PRECISION, scale)
}

/// The type of `AVG` over DECIMAL(p, s): DECIMAL(38, max(s, 6)).
pub fn avg_type(scale: u8) -> (u8, u8) {
    (MAX_PRECISION, scale.max(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str, p: u8, s: u8) -> Decimal {
        parse(text, p, s).unwrap().unwrap()
    }

    #[test]
    fn parsing_rounds_half_up_and_overflow_is_none() {
        assert_eq!(d("1.005", 5, 2).to_plain_string(), "1.01");
        assert_eq!(d("-1.5", 1, 0).to_plain_string(), "-2");
        assert_eq!(d("-0.005", 3, 1).to_plain_string(), "0.0");
        assert_eq!(d("1e3", 6, 2).to_plain_string(), "1000.00");
        assert_eq!(d(" .5 ", 2, 1).to_plain_string(), "0.5");
        assert_eq!(parse("12.345", 2, 1), Ok(None));
        assert_eq!(parse("abc", 5, 2), Err(NotANumber));
        assert_eq!(parse("1.2.3", 5, 2), Err(NotANumber));
        assert_eq!(from_f64(2.675, 4, 2).unwrap().to_plain_string(), "2.68");
        assert_eq!(from_i64(100, 2, 0), None);
    }

    #[test]
    fn arithmetic_takes_flinks_result_types_and_rounding() {
        // The values and types Flink 2.3 gave for DECIMAL(5,3) 12.345 and -0.005.
        let a = d("12.345", 5, 3);
        let b = d("-0.005", 5, 3);
        let three = d("3", 10, 0);
        let t = result_type(DecimalOp::Div, (5, 3), (10, 0));
        assert_eq!(t, (16, 14));
        let q = |x| arith(DecimalOp::Div, x, three, t.0, t.1).unwrap().unwrap();
        assert_eq!(q(a).to_plain_string(), "4.11500000000000");
        assert_eq!(q(b).to_plain_string(), "-0.00166666666667");
        assert_eq!(result_type(DecimalOp::Mul, (5, 3), (5, 3)), (11, 6));
        let sq = arith(DecimalOp::Mul, a, a, 11, 6).unwrap().unwrap();
        assert_eq!(sq.to_plain_string(), "152.399025");
        assert_eq!(result_type(DecimalOp::Div, (5, 3), (5, 3)), (14, 9));
        assert_eq!(result_type(DecimalOp::Add, (38, 10), (38, 10)), (38, 9));
        let r = arith(DecimalOp::Rem, d("-7.5", 5, 1), d("2", 10, 0), 3, 1);
        assert_eq!(r.unwrap().unwrap().to_plain_string(), "-1.5");
        assert!(arith(DecimalOp::Div, a, d("0", 1, 0), 20, 10).is_err());
        // Overflow of the result type gives NULL.
        let big = d("99999999999999999999999999999999999999", 38, 0);
        assert_eq!(arith(DecimalOp::Add, big, big, 38, 0), Ok(None));
        assert_eq!(avg_type(3), (38, 6));
        let avg = average(d("112.339", 38, 3), 3, 38, 6).unwrap();
        assert_eq!(avg.to_plain_string(), "37.446333");
    }

    #[test]
    fn text_forms_are_javas() {
        let tiny = Decimal {
            unscaled: 15,
            scale: 9,
        };
        assert_eq!(tiny.to_plain_string(), "0.000000015");
        assert_eq!(tiny.to_java_string(), "1.5E-8");
        assert_eq!(d("0.001", 5, 3).to_java_string(), "0.001");
        // What Flink 2.3's csv and json formats wrote for DECIMAL(10, 2) / (12, 10) values.
        for (text, p, s, written) in [
            ("12.50", 10, 2, "12.5"),
            ("20.00", 10, 2, "2E+1"),
            ("1.005", 10, 2, "1.01"),
            ("0.0000000015", 12, 10, "1.5E-9"),
            ("0.1", 12, 10, "0.1"),
            ("1", 12, 10, "1"),
            ("0", 10, 2, "0"),
            ("-120", 10, 2, "-1.2E+2"),
        ] {
            assert_eq!(d(text, p, s).to_format_string(), written, "{text}");
        }
        assert_eq!(d("0.0000000015", 12, 10).to_java_string(), "1.5E-9");
        assert_eq!(d("1", 12, 10).to_java_string(), "1.0000000000");
        assert_eq!(d("-12.30", 5, 2).to_java_string(), "-12.30");
        assert_eq!(d("12.345", 5, 3).to_i64(), 12);
        assert_eq!(d("-12.345", 5, 3).to_i64(), -12);
        assert_eq!(d("12.345", 5, 3).to_f64(), 12.345);
        assert_eq!(
            d("1.50", 5, 2).cmp_value(d("1.5", 5, 1)),
            std::cmp::Ordering::Equal
        );
    }
}
