//! The SQL text the connector runs. Identifiers are always double-quoted (so `order`, `Key`
//! and names with spaces work, and nothing in a name is read as SQL); a table name
//! `schema.table` names a table in another schema.

/// A table name as given (`orders`, `sales.orders`), quoted: `"orders"`, `"sales"."orders"`.
/// A name with a dot that is not a schema separator can be given already quoted
/// (`"my.table"`), which is kept as is.
pub fn quote_table(table: &str) -> String {
    let t = table.trim();
    if t.starts_with('"') {
        return t.to_string();
    }
    t.split('.').map(quote_ident).collect::<Vec<_>>().join(".")
}

/// An identifier in double quotes, inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn placeholders(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_condition(key: &[String]) -> String {
    key.iter()
        .enumerate()
        .map(|(i, k)| format!("{} = ${}", quote_ident(k), i + 1))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `INSERT INTO t (c1, c2) VALUES ($1, $2)`.
pub fn insert(table: &str, columns: &[String]) -> String {
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote_table(table),
        list(columns),
        placeholders(columns.len(), 1)
    )
}

/// `INSERT ... ON CONFLICT (k) DO UPDATE SET c = EXCLUDED.c` for every non-key column (`DO
/// NOTHING` when every column is a key column). Idempotent: running it twice leaves the row
/// the first run left.
pub fn upsert(table: &str, columns: &[String], key: &[String]) -> String {
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !key.contains(c))
        .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(c)))
        .collect();
    let action = if updates.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    format!(
        "{} ON CONFLICT ({}) {action}",
        insert(table, columns),
        list(key)
    )
}

/// `DELETE FROM t WHERE k1 = $1 AND k2 = $2`.
pub fn delete(table: &str, key: &[String]) -> String {
    format!(
        "DELETE FROM {} WHERE {}",
        quote_table(table),
        key_condition(key)
    )
}

/// `SELECT c1, c2 FROM t WHERE k1 = $1 AND ...` (`SELECT *` without columns; without key
/// columns every row: `SELECT c1, c2 FROM t`, a scan).
pub fn select(table: &str, columns: &[String], key: &[String]) -> String {
    let what = if columns.is_empty() {
        "*".to_string()
    } else {
        list(columns)
    };
    if key.is_empty() {
        return format!("SELECT {what} FROM {}", quote_table(table));
    }
    format!(
        "SELECT {what} FROM {} WHERE {}",
        quote_table(table),
        key_condition(key)
    )
}

/// `SELECT * FROM t LIMIT 0`: prepared to learn a table's columns and their types.
pub fn describe(table: &str) -> String {
    format!("SELECT * FROM {} LIMIT 0", quote_table(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn upserts_update_every_non_key_column_from_excluded() {
        assert_eq!(
            upsert("users", &s(&["id", "name", "score"]), &s(&["id"])),
            "INSERT INTO \"users\" (\"id\", \"name\", \"score\") VALUES ($1, $2, $3) \
             ON CONFLICT (\"id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\", \"score\" = EXCLUDED.\"score\""
        );
        assert_eq!(
            upsert("s.pairs", &s(&["a", "b"]), &s(&["b", "a"])),
            "INSERT INTO \"s\".\"pairs\" (\"a\", \"b\") VALUES ($1, $2) ON CONFLICT (\"b\", \"a\") DO NOTHING"
        );
    }

    #[test]
    fn inserts_deletes_and_selects_number_their_parameters_in_order() {
        assert_eq!(
            insert("log", &s(&["at", "msg"])),
            "INSERT INTO \"log\" (\"at\", \"msg\") VALUES ($1, $2)"
        );
        assert_eq!(
            delete("t", &s(&["k1", "k2"])),
            "DELETE FROM \"t\" WHERE \"k1\" = $1 AND \"k2\" = $2"
        );
        assert_eq!(
            select("t", &s(&["v"]), &s(&["k"])),
            "SELECT \"v\" FROM \"t\" WHERE \"k\" = $1"
        );
        assert_eq!(
            select("t", &[], &s(&["k"])),
            "SELECT * FROM \"t\" WHERE \"k\" = $1"
        );
        assert_eq!(select("t", &s(&["v"]), &[]), "SELECT \"v\" FROM \"t\"");
    }

    #[test]
    fn identifiers_are_quoted_so_nothing_in_a_name_is_sql() {
        assert_eq!(quote_ident("order"), "\"order\"");
        assert_eq!(
            quote_ident("a\"; DROP TABLE x; --"),
            "\"a\"\"; DROP TABLE x; --\""
        );
        assert_eq!(quote_table("\"my.table\""), "\"my.table\"");
        assert_eq!(quote_table("Sales.Orders"), "\"Sales\".\"Orders\"");
        assert_eq!(describe("t"), "SELECT * FROM \"t\" LIMIT 0");
    }
}
