//! Lookups against a real PostgreSQL 15 (Debian's binaries, started by
//! `scripts/infra/postgres.sh`): called directly from the test's thread, as a synchronous
//! operator calls them, and in a job through `LookupJoin`. Fixtures are written with `psql`.

mod support;

use fjord::StreamExecutionEnvironment;
use fjord_e2e::jobs::wait_for;
use fjord_postgres::{
    LOOKUP_METRIC_PREFIX, LookupCache, LookupJoin, PgRow, PgType, PgValue, PostgresLookup,
};
use std::time::Duration;
use support::{Server, metric_sum};

fn lookup_of(pg: &Server, table: &str, key: &[&str], cache: Option<LookupCache>) -> PostgresLookup {
    let mut b = PostgresLookup::builder()
        .url(pg.url())
        .table(table)
        .key(key.iter().copied());
    if let Some(c) = cache {
        b = b.cache(c);
    }
    b.build().unwrap()
}

/// The names in a lookup's rows.
fn names(rows: &[PgRow]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            r.get("name")
                .and_then(PgValue::as_str)
                .unwrap_or("-")
                .to_string()
        })
        .collect()
}

/// Without cache every lookup queries the server: matching rows (several for a key that is
/// not unique), none for a missing key or a NULL key; the columns and their types come from
/// the server's row description.
#[test]
fn lookups_return_typed_rows_of_the_key() {
    let pg = Server::shared();
    pg.psql(
        "CREATE TABLE people (id bigint PRIMARY KEY, team int, name text, born date, score numeric(6,2),
            seen timestamp(3), photo bytea);
         INSERT INTO people VALUES
            (1, 10, 'ada', '1815-12-10', 99.50, '2024-02-29 12:34:56.789', '\\x01'),
            (2, 10, 'grace', '1906-12-09', NULL, NULL, NULL),
            (3, 20, 'edsger', '1930-05-11', 1.25, '1970-01-01 00:00:00', '')",
    );
    let mut by_id = lookup_of(pg, "people", &["id"], None);
    let rows = by_id.lookup(&[PgValue::Int8(1)]).unwrap();
    let columns: Vec<(String, PgType)> = by_id
        .columns()
        .unwrap()
        .iter()
        .map(|c| (c.name.clone(), c.pg_type))
        .collect();
    assert_eq!(
        columns,
        [
            ("id".to_string(), PgType::Int8),
            ("team".into(), PgType::Int4),
            ("name".into(), PgType::Text),
            ("born".into(), PgType::Date),
            ("score".into(), PgType::Numeric),
            ("seen".into(), PgType::Timestamp),
            ("photo".into(), PgType::Bytea),
        ]
    );
    assert_eq!(
        rows[0].values(),
        [
            PgValue::Int8(1),
            PgValue::Int4(10),
            PgValue::text("ada"),
            // 1815-12-10
            PgValue::Date(-56_270),
            PgValue::Numeric("99.50".into()),
            PgValue::Timestamp(1_709_210_096_789),
            PgValue::Bytea(vec![1]),
        ]
    );
    let grace = by_id.lookup(&[PgValue::Int8(2)]).unwrap();
    assert_eq!(grace[0].get("score"), Some(&PgValue::Null));
    assert!(by_id.lookup(&[PgValue::Int8(4)]).unwrap().is_empty());
    assert!(by_id.lookup(&[PgValue::Null]).unwrap().is_empty());
    // An int4 key value against a bigint column is fine (widened).
    assert_eq!(
        names(&by_id.lookup(&[PgValue::Int4(3)]).unwrap()),
        ["edsger"]
    );
    let stats = by_id.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.loads),
        (0, 5, 4),
        "no cache; NULL keys are not queried"
    );

    let mut by_team = PostgresLookup::builder()
        .url(pg.url())
        .table("people")
        .key(["team"])
        .columns(["name"])
        .build()
        .unwrap();
    let mut team_10 = names(&by_team.lookup(&[PgValue::Int4(10)]).unwrap());
    team_10.sort();
    assert_eq!(team_10, ["ada", "grace"]);
    assert_eq!(by_team.columns().unwrap().len(), 1);
}

/// With a partial cache a key is queried once; later changes in the table are not seen while
/// it is cached; missing keys are cached unless told not to; the least recently used key is
/// evicted beyond max-rows.
#[test]
fn the_partial_cache_answers_repeated_keys() {
    let pg = Server::shared();
    pg.psql("CREATE TABLE cached (id int PRIMARY KEY, name text); INSERT INTO cached VALUES (1, 'one'), (2, 'two'), (3, 'three')");
    let mut l = lookup_of(pg, "cached", &["id"], Some(LookupCache::partial(2)));
    let key = |i: i32| [PgValue::Int4(i)];
    assert_eq!(names(&l.lookup(&key(1)).unwrap()), ["one"]);
    pg.psql("UPDATE cached SET name = 'uno' WHERE id = 1");
    assert_eq!(
        names(&l.lookup(&key(1)).unwrap()),
        ["one"],
        "from the cache"
    );
    assert!(l.lookup(&key(9)).unwrap().is_empty());
    pg.psql("INSERT INTO cached VALUES (9, 'nine')");
    assert!(
        l.lookup(&key(9)).unwrap().is_empty(),
        "the missing key was cached"
    );
    let s = l.stats();
    assert_eq!((s.hits, s.misses, s.loads, s.cached_keys), (2, 2, 2, 2));
    // Key 1 was used before key 9: a third key evicts it.
    assert_eq!(names(&l.lookup(&key(2)).unwrap()), ["two"]);
    assert_eq!(
        names(&l.lookup(&key(1)).unwrap()),
        ["uno"],
        "evicted, so queried again"
    );
    assert_eq!(l.stats().loads, 4);

    let mut no_missing = lookup_of(
        pg,
        "cached",
        &["id"],
        Some(LookupCache::partial(10).cache_missing_key(false)),
    );
    assert!(no_missing.lookup(&key(5)).unwrap().is_empty());
    pg.psql("INSERT INTO cached VALUES (5, 'five')");
    assert_eq!(names(&no_missing.lookup(&key(5)).unwrap()), ["five"]);
    assert_eq!(no_missing.stats().hits, 0);
}

/// An entry expires its time-to-live after it was loaded: a changed row is seen again.
#[test]
fn cached_entries_expire_after_write() {
    let pg = Server::shared();
    pg.psql("CREATE TABLE expiring (id int PRIMARY KEY, name text); INSERT INTO expiring VALUES (1, 'old')");
    let mut l = lookup_of(
        pg,
        "expiring",
        &["id"],
        Some(LookupCache::partial(100).expire_after_write(Duration::from_millis(200))),
    );
    assert_eq!(names(&l.lookup(&[PgValue::Int4(1)]).unwrap()), ["old"]);
    pg.psql("UPDATE expiring SET name = 'new' WHERE id = 1");
    wait_for("the entry to expire", Duration::from_secs(30), || {
        names(&l.lookup(&[PgValue::Int4(1)]).unwrap()) == ["new"]
    });
    assert_eq!(
        l.stats().loads,
        2,
        "loaded once, and once more after it expired"
    );
}

fn docs_join(url: &str) -> Result<Vec<(i64, String)>, Box<dyn std::error::Error>> {
    let env = StreamExecutionEnvironment::new();
    // The block in docs/connectors/postgres.md, verbatim:
    // CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL)
    let customers = PostgresLookup::builder()
        .url(url)
        .table("customers")
        .key(["id"])
        .columns(["name"])
        .cache(LookupCache::partial(10_000).expire_after_write(Duration::from_secs(60)))
        .build()?;
    // (order id, customer id) → (order id, customer name); orders without customer are dropped.
    let orders = env.from_collection(vec![(100i64, 1i64), (101, 2), (102, 1), (103, 7)]);
    let named = orders.flat_map(LookupJoin::new(
        customers,
        |&(_, customer): &(i64, i64)| vec![PgValue::Int8(customer)],
        |&(order, _): &(i64, i64), rows: &[PgRow]| {
            rows.iter()
                .filter_map(|r| r.get("name")?.as_str().map(|n| (order, n.to_string())))
                .collect::<Vec<_>>()
        },
    ));
    // (end of the block)
    let out = named.collect();
    let result = env.execute("lookup join")?;
    assert_eq!(
        metric_sum(&result.metrics, LOOKUP_METRIC_PREFIX, "hitCount"),
        1,
        "customer 1's second order"
    );
    assert_eq!(
        metric_sum(&result.metrics, LOOKUP_METRIC_PREFIX, "loadCount"),
        3
    );
    let mut v = out.values();
    v.sort();
    Ok(v)
}

/// `LookupJoin` in a job: each order gets its customer's name; the cache answers a repeated
/// customer (the job's metrics count the hits).
#[test]
fn a_lookup_join_enriches_a_stream() {
    let pg = Server::shared();
    pg.psql("CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL); INSERT INTO customers VALUES (1, 'ada'), (2, 'grace')");
    assert_eq!(
        docs_join(pg.url()).unwrap(),
        [
            (100, "ada".to_string()),
            (101, "grace".to_string()),
            (102, "ada".to_string())
        ]
    );
}

/// A server restarted between two lookups: the first lookup after it fails on the old
/// connection and is retried on a new one.
#[test]
fn a_lookup_reconnects_after_a_server_restart() {
    let pg = Server::start("lookup-restart");
    pg.psql("CREATE TABLE kv (k text PRIMARY KEY, v text); INSERT INTO kv VALUES ('a', '1')");
    let mut l = lookup_of(&pg, "kv", &["k"], None);
    l.open(None).unwrap();
    assert_eq!(
        l.lookup(&[PgValue::text("a")]).unwrap()[0].get("v"),
        Some(&PgValue::text("1"))
    );
    pg.stop();
    pg.restart();
    assert_eq!(
        l.lookup(&[PgValue::text("a")]).unwrap()[0].get("v"),
        Some(&PgValue::text("1"))
    );
    let s = l.stats();
    assert!(s.retries >= 1, "the broken connection was retried: {s:?}");
    assert_eq!(s.load_failures, 0);
}

/// A missing table or column, a key value of the wrong type, a column the connector cannot
/// read: errors naming it and what to do.
#[test]
fn lookup_errors_say_what_is_wrong() {
    let pg = Server::shared();
    pg.psql("CREATE TABLE lk (id bigint PRIMARY KEY, name text, tag uuid)");
    let e = lookup_of(pg, "lk_missing", &["id"], None)
        .open(None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("table lk_missing does not exist") && e.contains("schema.table"),
        "{e}"
    );
    let e = lookup_of(pg, "lk", &["idd"], None)
        .open(None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("table lk has no column idd")
            && e.contains("id (int8), name (text), tag (uuid)"),
        "{e}"
    );
    let e = lookup_of(pg, "lk", &["id"], None)
        .open(None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("column tag of table lk has type uuid, which the connector cannot read")
            && e.contains("leave it out"),
        "{e}"
    );
    let mut l = PostgresLookup::builder()
        .url(pg.url())
        .table("lk")
        .key(["id"])
        .columns(["name"])
        .build()
        .unwrap();
    let e = l.lookup(&[PgValue::text("1")]).unwrap_err().to_string();
    assert!(
        e.contains("column id of table lk has type int8") && e.contains("PgValue::Int8"),
        "{e}"
    );
    let e = l
        .lookup(&[PgValue::Int8(1), PgValue::Int8(2)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a lookup key for table lk has 2 values, but needs 1 (id)"),
        "{e}"
    );
}
