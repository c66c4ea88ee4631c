//! Table tests of TINYINT, SMALLINT, FLOAT and DECIMAL expressions: types and values as
//! Flink 2.3 computed them for the same expressions over the same values (probed on Flink's
//! table planner, the values of `e2e/tests/flink_sql_oracle.rs`'s typed cases).

use crate::bind::Binder;
use crate::error::ErrorKind;
use crate::types::{Column, DataType, Schema, Value};
use sqlparser::ast::{SelectItem, SetExpr, Statement};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

fn schema() -> Schema {
    let col = |name: &str, data_type| Column {
        name: name.into(),
        data_type,
        rowtime: false,
    };
    Schema {
        columns: vec![
            col("b", DataType::TinyInt),
            col("s", DataType::SmallInt),
            col("f", DataType::Float),
            col("d", DataType::Decimal(5, 3)),
            col("txt", DataType::String),
        ],
    }
}

fn bind(text: &str) -> crate::Result<crate::expr::Expr> {
    let sql = format!("SELECT {text} FROM t");
    let stmt = Parser::parse_sql(&GenericDialect {}, &sql)
        .unwrap()
        .remove(0);
    let Statement::Query(q) = stmt else {
        panic!("a query")
    };
    let SetExpr::Select(select) = *q.body else {
        panic!("a select")
    };
    let SelectItem::UnnamedExpr(e) = &select.projection[0] else {
        panic!("an expression")
    };
    Binder::new(&schema()).bind(e)
}

/// The value over a row as the oracle prints it (Java's `toString`; "NULL" for NULL) and
/// the type, and the value over a row of NULLs.
fn eval(text: &str, row: &[Value]) -> (String, DataType, String) {
    let e = bind(text).unwrap_or_else(|err| panic!("{text}: {err}"));
    let show = |v: Value| match v {
        Value::Null => "NULL".to_string(),
        Value::Decimal(d) => d.to_java_string(),
        other => other.to_sql_string().unwrap_or_default(),
    };
    let value = show(e.eval(row).unwrap_or_else(|err| panic!("{text}: {err}")));
    let nulls = show(e.eval(&vec![Value::Null; 5]).unwrap());
    (value, e.data_type(), nulls)
}

fn row(b: i8, s: i16, f: f32, d: &str) -> Vec<Value> {
    vec![
        Value::TinyInt(b),
        Value::SmallInt(s),
        Value::Float(f),
        Value::Decimal(crate::decimal::parse(d, 5, 3).unwrap().unwrap()),
        Value::String(" 12 ".into()),
    ]
}

#[test]
fn small_integers_wrap_at_their_width_as_in_flink() {
    use DataType::*;
    let r = row(100, 30000, 1.5, "12.345");
    for (text, value, t) in [
        ("b + b", "-56", TinyInt),
        ("b * 2", "200", Int),
        ("s + s", "-5536", SmallInt),
        ("b + s", "30100", SmallInt),
        ("b / 3", "33", Int),
        ("CAST(300 AS TINYINT)", "44", TinyInt),
        ("CAST(70000 AS SMALLINT)", "4464", SmallInt),
        ("CAST(txt AS TINYINT)", "12", TinyInt),
        ("CAST(TRUE AS TINYINT)", "1", TinyInt),
        ("CAST(b AS STRING)", "100", String),
        ("b = 100", "TRUE", Boolean),
        ("TRY_CAST('300' AS TINYINT)", "NULL", TinyInt),
        ("ABS(b - 110)", "10", Int),
    ] {
        let (v, ty, _) = eval(text, &r);
        assert_eq!((v.as_str(), ty), (value, t), "{text}");
    }
    let r = row(-128, -32768, 0.1, "-0.005");
    assert_eq!(eval("-b", &r).0, "-128");
    assert_eq!(eval("b + b", &r).0, "0");
    assert!(bind("CAST('300' AS TINYINT)").unwrap().eval(&r).is_err());
}

#[test]
fn floats_compute_in_32_bits_and_print_as_java_floats() {
    use DataType::*;
    let r = row(1, 1, 0.1, "-0.005");
    for (text, value, t) in [
        ("f", "0.1", Float),
        ("f * 3", "0.3", Float),
        ("f + 1", "1.1", Float),
        // FLOAT with DECIMAL is DOUBLE: the float's binary value shows.
        ("f + 1.5", "1.6000000014901161", Double),
        ("CAST(f AS DOUBLE)", "0.10000000149011612", Double),
        ("CAST(f AS STRING)", "0.1", String),
        ("d + f", "0.09500000149011611", Double),
        ("CAST(1.0E10 AS FLOAT)", "1.0E10", Float),
        ("CAST(12345678 AS FLOAT)", "1.2345678E7", Float),
        ("CAST(1.0E10 AS FLOAT) > f", "TRUE", Boolean),
    ] {
        let (v, ty, nulls) = eval(text, &r);
        assert_eq!((v.as_str(), ty), (value, t), "{text}");
        if text.contains('f') && !text.contains("AS FLOAT") {
            assert_eq!(nulls, "NULL", "{text} over NULLs");
        }
    }
    let big = row(1, 1, 1.0e10, "0");
    assert_eq!(eval("CAST(f AS INT)", &big).0, "2147483647");
    assert_eq!(eval("CAST(f AS BIGINT)", &big).0, "10000000000");
}

#[test]
fn decimals_take_flinks_types_rounding_and_overflow() {
    let dec = DataType::Decimal;
    use DataType::{Boolean, Double, Int, String};
    let r = row(100, 1, 1.5, "12.345");
    for (text, value, t) in [
        ("d", "12.345", dec(5, 3)),
        ("d + d", "24.690", dec(6, 3)),
        ("d * d", "152.399025", dec(11, 6)),
        ("d / 3", "4.11500000000000", dec(16, 14)),
        ("d / d", "1.000000000", dec(14, 9)),
        ("d + 1", "13.345", dec(14, 3)),
        ("d * 1.5", "18.5175", dec(8, 4)),
        ("d + CAST(1 AS DOUBLE)", "13.345", Double),
        ("CAST(d AS INT)", "12", Int),
        ("CAST(d AS STRING)", "12.345", String),
        ("CAST(d AS DECIMAL(3, 1))", "12.3", dec(3, 1)),
        ("CAST(d AS DECIMAL(2, 1))", "NULL", dec(2, 1)),
        ("1.5", "1.5", dec(2, 1)),
        ("0.1 + 0.2", "0.3", dec(2, 1)),
        ("1e3", "1000.0", Double),
        ("d = 12.3450", "TRUE", Boolean),
        ("d > 12", "TRUE", Boolean),
        ("MOD(d, 2)", "0.345", dec(5, 3)),
        ("d % 2", "0.345", dec(5, 3)),
        ("CAST(-1.5 AS DECIMAL(1, 0))", "-2", dec(1, 0)),
        ("CAST(2.5 AS INT)", "2", Int),
        (
            "CAST(CAST(2.675 AS DOUBLE) AS DECIMAL(4, 2))",
            "2.68",
            dec(4, 2),
        ),
        ("TRY_CAST('abc' AS DECIMAL(5, 2))", "NULL", dec(5, 2)),
        ("CAST('1.005' AS DECIMAL(5, 2))", "1.01", dec(5, 2)),
        ("CAST(b AS DECIMAL(2, 0))", "NULL", dec(2, 0)),
        ("ABS(-d)", "12.345", dec(5, 3)),
        ("CAST(d AS FLOAT)", "12.345", DataType::Float),
        ("COALESCE(d, 0)", "12.345", dec(13, 3)),
        ("CASE WHEN d > 5 THEN d ELSE 0.5 END", "12.345", dec(5, 3)),
    ] {
        let (v, ty, _) = eval(text, &r);
        assert_eq!((v.as_str(), ty), (value, t), "{text}");
    }
    let r = row(1, 1, 1.5, "-0.005");
    assert_eq!(eval("d / 3", &r).0, "-0.00166666666667");
    assert_eq!(eval("CAST(d AS DECIMAL(3, 1))", &r).0, "0.0");
    assert_eq!(eval("d * d", &r).0, "0.000025");
    assert_eq!(eval("d - 0.005", &r).0, "-0.010");
    assert!(bind("d / 0").unwrap().eval(&r).is_err());
}

#[test]
fn bad_types_are_refused_with_their_place() {
    for (text, kind, needle) in [
        (
            "CAST(d AS DECIMAL(40, 2))",
            ErrorKind::TypeMismatch,
            "between 1 and 38",
        ),
        (
            "CAST(d AS DECIMAL(5, 6))",
            ErrorKind::TypeMismatch,
            "DECIMAL(5, 6)",
        ),
        (
            "ROUND(d, 1)",
            ErrorKind::Unsupported,
            "CAST the argument AS DOUBLE",
        ),
        (
            "d + txt",
            ErrorKind::TypeMismatch,
            "cannot apply + to DECIMAL(5, 3) and STRING",
        ),
        (
            "MOD(f, 2)",
            ErrorKind::TypeMismatch,
            "MOD needs two exact numbers",
        ),
    ] {
        let e = bind(text).expect_err(text);
        assert_eq!(e.kind(), Some(kind), "{text}: {e}");
        let message = e.to_string();
        assert!(message.contains(needle), "{text}: {message}");
        assert!(message.starts_with("line 1, column "), "{text}: {message}");
    }
}
