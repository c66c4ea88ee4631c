//! The Kubernetes quantity arithmetic the downward API's `resourceFieldRef` needs.

/// Parse a quantity (`500m`, `2`, `1Gi`, `100M`, `1e3`) into a float of base units.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let value: f64 = num.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        _ => return None,
    };
    Some(value * factor)
}

/// `value / divisor`, rounded up to an integer, as the kubelet renders resourceFieldRef values.
pub fn divide_ceil(value: &str, divisor: Option<&str>) -> Option<String> {
    let v = parse(value)?;
    let d = divisor.map(parse).unwrap_or(Some(1.0))?;
    if d <= 0.0 {
        return None;
    }
    Some(format!("{}", (v / d).ceil() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_divides_like_the_kubelet() {
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("1Gi"), Some(1073741824.0));
        assert_eq!(divide_ceil("500m", None).as_deref(), Some("1"));
        assert_eq!(divide_ceil("2", Some("1m")).as_deref(), Some("2000"));
        assert_eq!(divide_ceil("1Gi", Some("1Mi")).as_deref(), Some("1024"));
        assert_eq!(parse("1x"), None);
    }
}
