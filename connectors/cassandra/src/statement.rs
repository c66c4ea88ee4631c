//! The statement every record is written with: a user's INSERT (or UPDATE) with bind markers
//! (Flink's `setQuery`), or one generated from a keyspace, a table and its columns.

use crate::error::CassandraSinkError;

/// A CQL identifier as written in a statement: bare if it is lower-case letters, digits and
/// `_` starting with a letter (Cassandra folds unquoted names to lower case), double-quoted
/// (with `"` doubled) otherwise.
pub fn quote_identifier(name: &str) -> String {
    let bare = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `INSERT INTO ks.table (c1, c2, ...) VALUES (?, ?, ...)` [`USING TTL n`].
///
/// # Errors
/// [`CassandraSinkError::Config`] for an empty keyspace, table or column list.
pub fn insert_statement(
    keyspace: &str,
    table: &str,
    columns: &[String],
    ttl_seconds: Option<u32>,
) -> Result<String, CassandraSinkError> {
    if keyspace.trim().is_empty() || table.trim().is_empty() {
        return Err(CassandraSinkError::Config(
            "the keyspace and the table must not be empty".into(),
        ));
    }
    if columns.is_empty() || columns.iter().any(|c| c.trim().is_empty()) {
        return Err(CassandraSinkError::Config(format!(
            "writing to {keyspace}.{table} needs its column names, none empty: call .table(keyspace, table, [\"id\", \"name\", ...])"
        )));
    }
    let names: Vec<String> = columns.iter().map(|c| quote_identifier(c)).collect();
    let markers = vec!["?"; columns.len()].join(", ");
    let mut q = format!(
        "INSERT INTO {}.{} ({}) VALUES ({markers})",
        quote_identifier(keyspace),
        quote_identifier(table),
        names.join(", ")
    );
    if let Some(ttl) = ttl_seconds {
        q.push_str(&format!(" USING TTL {ttl}"));
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_inserts_quote_what_needs_quoting() {
        let q = insert_statement(
            "shop",
            "Orders",
            &["id".into(), "customer name".into(), "x\"y".into()],
            Some(60),
        )
        .unwrap();
        assert_eq!(
            q,
            "INSERT INTO shop.\"Orders\" (id, \"customer name\", \"x\"\"y\") VALUES (?, ?, ?) USING TTL 60"
        );
        assert!(insert_statement("shop", "t", &[], None).is_err());
        assert!(insert_statement("", "t", &["a".into()], None).is_err());
    }
}
