//! The Nexmark queries as SQL on Fjord: the Flink benchmark's query texts
//! (`bench/nexmark/flink/qN.sql`, or the rewrites in `bench/nexmark/sql/`) run by `fjord-sql`
//! after the same `nexmark` table and `person`/`auction`/`bid` views Flink runs them on
//! (`scripts/infra/flink/src/fjord/oracle/NexmarkSql.java`): nested JSON event files read with
//! the benchmark's own DDL.

use crate::error::NexmarkError;
use std::path::Path;

/// The benchmark's `nexmark` table over the event files of `fjord-nexmark generate` (the
/// `datagen` table of the Flink benchmark, with the `filesystem` connector), and its views.
/// Identical to the text `NexmarkSql.java` gives Flink.
pub fn source_ddl(input: &Path) -> String {
    format!(
        "CREATE TABLE nexmark (
  event_type INT,
  person ROW<id BIGINT, name VARCHAR, emailAddress VARCHAR, creditCard VARCHAR, city VARCHAR, state VARCHAR, `dateTime` TIMESTAMP(3), extra VARCHAR>,
  auction ROW<id BIGINT, itemName VARCHAR, description VARCHAR, initialBid BIGINT, reserve BIGINT, `dateTime` TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra VARCHAR>,
  bid ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, `dateTime` TIMESTAMP(3), extra VARCHAR>,
  `dateTime` AS CASE WHEN event_type = 0 THEN person.`dateTime` WHEN event_type = 1 THEN auction.`dateTime` ELSE bid.`dateTime` END,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE VIEW person AS SELECT person.id, person.name, person.emailAddress, person.creditCard, person.city, person.state, `dateTime`, person.extra FROM nexmark WHERE event_type = 0;
CREATE VIEW auction AS SELECT auction.id, auction.itemName, auction.description, auction.initialBid, auction.reserve, `dateTime`, auction.expires, auction.seller, auction.category, auction.extra FROM nexmark WHERE event_type = 1;
CREATE VIEW bid AS SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, `dateTime`, bid.extra FROM nexmark WHERE event_type = 2;
",
        input.display()
    )
}

/// The whole script of a query: the source table and views, then the query text with its
/// `blackhole` sink kept, or replaced by CSV files in `output` (the rows `fjord-nexmark
/// compare` reads).
///
/// # Errors
/// The query text has no `'connector' = 'blackhole'` sink to replace.
pub fn script(
    query_text: &str,
    input: &Path,
    output: Option<&Path>,
) -> Result<String, NexmarkError> {
    let blackhole = "'connector' = 'blackhole'";
    let query = match output {
        None => query_text.to_string(),
        Some(dir) if query_text.contains(blackhole) => query_text.replacen(
            blackhole,
            &format!(
                "'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'",
                dir.display()
            ),
            1,
        ),
        Some(_) => {
            return Err(NexmarkError::Config(format!(
                "the query text has no {blackhole} sink to write rows instead"
            )));
        }
    };
    Ok(format!("{}{query}", source_ddl(input)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_is_replaced_only_when_rows_are_wanted() {
        let q = "CREATE TABLE s (a BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO s SELECT auction FROM bid;";
        let kept = script(q, Path::new("/in"), None).unwrap();
        assert!(kept.contains("'path' = '/in', 'format' = 'json'"));
        assert!(kept.ends_with(q));
        let files = script(q, Path::new("/in"), Some(Path::new("/out"))).unwrap();
        assert!(files.contains("'connector' = 'filesystem', 'path' = '/out', 'format' = 'csv'"));
        assert!(
            script(
                "INSERT INTO s SELECT 1;",
                Path::new("/in"),
                Some(Path::new("/o"))
            )
            .is_err()
        );
    }
}
