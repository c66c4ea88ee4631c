//! Apache Flink SQL is the oracle for Fjord's SQL: the same script, over the same CSV file,
//! runs on Fjord (embedded mini-cluster, rows written by the `filesystem` sink) and on Flink
//! 2.3's table planner (`scripts/infra/flink.sh sql`, rows of each INSERT's SELECT collected),
//! and the rows each sink receives must be equal as multisets (the order of rows that two
//! parallel subtasks emit is not specified by either system).
//!
//! Needs Flink's jars: `scripts/infra/install-flink.sh` (resolves the SQL stack from Maven
//! Central into `~/.cache/fjord/flink-<version>/sql-libs`).

use fjord::StreamExecutionEnvironment;
use fjord_e2e::flink::{run_sql_script, run_sql_scripts};
use fjord_e2e::{KafkaBroker, KafkaOptions};
use std::collections::BTreeMap;
use std::path::Path;

/// Orders with NULLs in every column but the key and time, slightly out of order (within the
/// watermark's 2 s bound, so neither system drops a row as late), a customer that reads as a
/// number and an amount Java prints in scientific notation.
const ORDERS: &str = "\
1,alice,10.5,2,2024-01-01 00:00:01
2,bob,,3,2024-01-01 00:00:04
3,alice,7.25,,2024-01-01 00:00:09
4,,3.0,1,2024-01-01 00:00:12
7,carol,-4.5,9,2024-01-01 00:00:11.250
5,42,20.0,5,2024-01-01 00:00:15
6,alice,1.0E10,4,2024-01-01 00:00:21
9,bob,1.0,4,2024-01-01 00:00:22
8,carol,,,2024-01-01 00:00:29.999
";

/// Customers to join the orders with: a name no order has, a name twice, a NULL name and a
/// NULL tier.
const CUSTOMERS: &str = "\
alice,paris,2
bob,oslo,1
carol,rome,
dave,oslo,3
alice,lyon,1
,nowhere,5
";

/// The source table, shared by every case; `{dir}` is the case's directory.
const ORDERS_DDL: &str = "
SET 'parallelism.default' = '2';
CREATE TABLE orders (
  id INT, customer STRING, amount DOUBLE, qty INT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{dir}/orders.csv', 'format' = 'csv',
        'csv.null-literal' = '');
CREATE TABLE customers (name STRING, city STRING, tier INT)
  WITH ('connector' = 'filesystem', 'path' = '{dir}/customers.csv', 'format' = 'csv',
        'csv.null-literal' = '');
CREATE TABLE ticks (symbol STRING, price INT, ts TIMESTAMP(3),
                    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{dir}/ticks.csv', 'format' = 'csv');
";

/// Each case: a name and the statements after the source table; sinks write CSV under
/// `{dir}/<sink>`.
const CASES: &[(&str, &str)] = &[
    (
        "row-array-map-and-timestamp-ltz",
        "CREATE TABLE nested (
           id INT,
           customer ROW<name STRING, address ROW<city STRING, zip STRING>>,
           tags ARRAY<STRING>,
           attrs MAP<STRING, STRING>,
           ts BIGINT
         ) WITH ('connector' = 'filesystem', 'path' = '{dir}/nested.json', 'format' = 'json');
         CREATE TABLE flat (id INT, name STRING, city STRING, zip STRING, first_tag STRING,
                            third_tag STRING, n_tags INT, color STRING, size STRING, n_attrs INT,
                            customer_text STRING, tags_text STRING, attrs_text STRING,
                            built STRING, nums STRING, ltz STRING, ltz_seconds STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/flat', 'format' = 'csv');
         INSERT INTO flat
         SELECT id, customer.name, nested.customer.address.city, customer.address.zip,
                tags[1], tags[3], CARDINALITY(tags), attrs['color'], attrs['size'],
                CARDINALITY(attrs), CAST(customer AS STRING), CAST(tags AS STRING),
                CAST(attrs AS STRING), CAST(ROW(id, customer.name) AS STRING),
                CAST(ARRAY[id, id * 10] AS STRING), CAST(TO_TIMESTAMP_LTZ(ts, 3) AS STRING),
                CAST(TO_TIMESTAMP_LTZ(ts / 1000, 0) AS STRING)
         FROM nested;
         CREATE TABLE timed (
           id INT, customer ROW<name STRING, address ROW<city STRING, zip STRING>>, ts BIGINT,
           rowtime AS TO_TIMESTAMP_LTZ(ts, 3),
           WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
         ) WITH ('connector' = 'filesystem', 'path' = '{dir}/nested.json', 'format' = 'json');
         CREATE TABLE per_window (ws TIMESTAMP(3), we TIMESTAMP(3), cnt BIGINT, cities BIGINT,
                                  last_id INT, shifted STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/per_window', 'format' = 'csv');
         INSERT INTO per_window
         SELECT window_start, window_end, COUNT(*), COUNT(customer.address.city), MAX(id),
                CAST(MAX(rowtime + INTERVAL '1' HOUR) AS STRING)
         FROM TABLE(TUMBLE(TABLE timed, DESCRIPTOR(rowtime), INTERVAL '2' SECOND))
         GROUP BY window_start, window_end;",
    ),
    (
        // UNNEST of arrays (with NULL elements, empty and NULL arrays), of a map, of an array
        // built in the query, with positions, and kept rows of a LEFT JOIN ... ON TRUE.
        "unnest-arrays-and-maps",
        "CREATE TABLE nested (
           id INT,
           customer ROW<name STRING, address ROW<city STRING, zip STRING>>,
           tags ARRAY<STRING>,
           attrs MAP<STRING, STRING>,
           ts BIGINT
         ) WITH ('connector' = 'filesystem', 'path' = '{dir}/nested.json', 'format' = 'json');
         CREATE TABLE tag_rows (id INT, tag STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/tag_rows', 'format' = 'csv');
         INSERT INTO tag_rows SELECT id, tag FROM nested CROSS JOIN UNNEST(tags) AS t (tag);
         CREATE TABLE tag_positions (id INT, tag STRING, pos INT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/tag_positions', 'format' = 'csv');
         INSERT INTO tag_positions
         SELECT id, tag, pos FROM nested, UNNEST(tags) WITH ORDINALITY AS t (tag, pos)
         WHERE tag IS NOT NULL;
         CREATE TABLE all_ids (id INT, tag STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/all_ids', 'format' = 'csv');
         INSERT INTO all_ids
         SELECT id, UPPER(tag) FROM nested LEFT JOIN UNNEST(tags) AS t (tag) ON TRUE;
         CREATE TABLE attr_rows (id INT, k STRING, v STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/attr_rows', 'format' = 'csv');
         INSERT INTO attr_rows SELECT id, k, v FROM nested CROSS JOIN UNNEST(attrs) AS t (k, v);
         CREATE TABLE spread (id INT, n INT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/spread', 'format' = 'csv');
         INSERT INTO spread
         SELECT id, n FROM orders CROSS JOIN UNNEST(ARRAY[id, id * 10, qty]) AS t (n)
         WHERE n > 5;",
    ),
    (
        "projection-filter-case-cast-nulls",
        "CREATE TABLE shaped (id INT, who STRING, band STRING, double_qty BIGINT, name STRING,
                              name_len INT, neg DOUBLE, qty_text STRING, pos BOOLEAN)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/shaped', 'format' = 'csv');
         INSERT INTO shaped
         SELECT id, UPPER(customer),
                CASE WHEN amount > 5 THEN 'big' WHEN amount <= 5 THEN 'small' ELSE 'unknown' END,
                CAST(qty AS BIGINT) * 2, COALESCE(customer, 'nobody'), CHAR_LENGTH(customer),
                ABS(amount) * -1, CONCAT(LOWER(customer), '-', CAST(qty AS STRING)),
                amount > 0 AND qty > 1
         FROM orders
         WHERE qty IS NULL OR MOD(qty, 2) = 1 OR amount BETWEEN 5 AND 15;",
    ),
    (
        "casts-arithmetic-and-three-valued-where",
        "CREATE TABLE casts (id INT, a STRING, t STRING, bad INT, q INT, half INT, m INT,
                             inf DOUBLE, tag STRING, later TIMESTAMP(3), big BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/casts', 'format' = 'csv');
         INSERT INTO casts
         SELECT id, CAST(amount AS STRING), CAST(ts AS STRING), TRY_CAST(customer AS INT),
                CAST(CAST(qty AS STRING) AS INT) + 1, id / 2, -id % 3, amount / 0,
                CASE WHEN customer IN ('alice', 'bob') THEN 'known' WHEN customer IS NULL THEN NULL END,
                ts + INTERVAL '90' MINUTE, CAST(id AS BIGINT) * 3000000000
         FROM orders
         WHERE NOT (qty < 2) OR qty IS NULL;",
    ),
    (
        "tumble-window-aggregation",
        "CREATE TABLE per_customer (ws TIMESTAMP(3), we TIMESTAMP(3), customer STRING, cnt BIGINT,
                                    amounts BIGINT, total DOUBLE, min_q INT, max_q INT, avg_q INT,
                                    avg_amount DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/per_customer', 'format' = 'csv');
         INSERT INTO per_customer
         SELECT window_start, window_end, customer, COUNT(*), COUNT(amount), SUM(amount),
                MIN(qty), MAX(qty), AVG(qty), AVG(amount)
         FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end, customer;",
    ),
    (
        "hop-window-aggregation-over-a-view",
        "CREATE VIEW known AS SELECT id, customer, qty, ts FROM orders WHERE customer IS NOT NULL;
         CREATE TABLE hopped (ws TIMESTAMP(3), we TIMESTAMP(3), customer STRING, cnt BIGINT,
                              qty INT, first_id INT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/hopped', 'format' = 'csv');
         INSERT INTO hopped
         SELECT window_start, window_end, customer, COUNT(*) AS cnt, SUM(qty) AS qty, MIN(id)
         FROM TABLE(HOP(TABLE known, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
         GROUP BY window_start, window_end, customer
         HAVING COUNT(*) > 1 OR SUM(qty) IS NULL;",
    ),
    (
        "cumulate-window-with-distinct-aggregates-and-window-time",
        "CREATE TABLE cumulated (ws TIMESTAMP(3), we TIMESTAMP(3), wt TIMESTAMP(3), customer STRING,
                                 cnt BIGINT, customers BIGINT, qtys BIGINT, distinct_qty INT,
                                 avg_distinct_qty INT, max_distinct_amount DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/cumulated', 'format' = 'csv');
         INSERT INTO cumulated
         SELECT window_start, window_end, window_time, customer, COUNT(*),
                COUNT(DISTINCT customer), COUNT(DISTINCT qty), SUM(DISTINCT qty),
                AVG(DISTINCT qty), MAX(DISTINCT amount)
         FROM TABLE(CUMULATE(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND))
         GROUP BY window_start, window_end, window_time, customer;
         CREATE TABLE distinct_per_window (we TIMESTAMP(3), customers BIGINT, qtys BIGINT,
                                           all_rows BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/distinct_per_window', 'format' = 'csv');
         INSERT INTO distinct_per_window
         SELECT window_end, COUNT(DISTINCT customer), COUNT(DISTINCT qty), COUNT(*)
         FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end;",
    ),
    (
        "session-windows-per-customer-and-over-all-rows",
        "CREATE TABLE sessions (ws TIMESTAMP(3), we TIMESTAMP(3), wt TIMESTAMP(3), customer STRING,
                                cnt BIGINT, total DOUBLE, qtys BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/sessions', 'format' = 'csv');
         INSERT INTO sessions
         SELECT window_start, window_end, window_time, customer, COUNT(*), SUM(amount),
                COUNT(DISTINCT qty)
         FROM TABLE(SESSION(TABLE orders PARTITION BY customer, DESCRIPTOR(ts), INTERVAL '6' SECOND))
         GROUP BY window_start, window_end, window_time, customer;
         CREATE TABLE bursts (ws TIMESTAMP(3), we TIMESTAMP(3), cnt BIGINT, min_id INT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/bursts', 'format' = 'csv');
         INSERT INTO bursts
         SELECT window_start, window_end, COUNT(*), MIN(id)
         FROM TABLE(SESSION(TABLE orders, DESCRIPTOR(ts), INTERVAL '3' SECOND))
         GROUP BY window_start, window_end;",
    ),
    (
        "computed-columns-and-a-computed-rowtime",
        "CREATE TABLE orders_text (
           id INT, customer STRING, amount DOUBLE, qty INT,
           total AS amount * qty,
           t STRING,
           ts AS TO_TIMESTAMP(t),
           cast_ts AS CAST(t AS TIMESTAMP(3)),
           not_a_time AS TO_TIMESTAMP(customer),
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
         ) WITH ('connector' = 'filesystem', 'path' = '{dir}/orders.csv', 'format' = 'csv',
                 'csv.null-literal' = '');
         CREATE TABLE computed (ws TIMESTAMP(3), we TIMESTAMP(3), customer STRING, cnt BIGINT,
                                total DOUBLE, max_total DOUBLE, last_ts TIMESTAMP(3),
                                parsed BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/computed', 'format' = 'csv');
         INSERT INTO computed
         SELECT window_start, window_end, customer, COUNT(*), SUM(total), MAX(total),
                MAX(cast_ts), COUNT(not_a_time)
         FROM TABLE(TUMBLE(TABLE orders_text, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end, customer;",
    ),
    (
        "window-top-n-over-tumble-cumulate-and-hop",
        "CREATE TABLE top_amounts (id INT, customer STRING, amount DOUBLE, qty INT, ts TIMESTAMP(3),
                                   ws TIMESTAMP(3), we TIMESTAMP(3), wt TIMESTAMP(3), rownum BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/top_amounts', 'format' = 'csv');
         INSERT INTO top_amounts
         SELECT * FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                                        ORDER BY amount DESC) AS rownum
           FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND)))
         WHERE rownum <= 2;
         CREATE TABLE low_qty (ws TIMESTAMP(3), we TIMESTAMP(3), id INT, qty INT, rownum BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/low_qty', 'format' = 'csv');
         INSERT INTO low_qty
         SELECT window_start, window_end, id, qty, rownum FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                                        ORDER BY qty ASC, id DESC) AS rownum
           FROM TABLE(CUMULATE(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND)))
         WHERE rownum <= 2;
         CREATE TABLE most_qty (we TIMESTAMP(3), customer STRING, id INT, qty INT, r BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/most_qty', 'format' = 'csv');
         INSERT INTO most_qty
         SELECT we, customer, id, qty, r FROM (
           SELECT window_end AS we, customer, id, qty,
                  ROW_NUMBER() OVER (PARTITION BY window_start, window_end, customer
                                     ORDER BY qty DESC NULLS FIRST, id) AS r
           FROM TABLE(HOP(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
           WHERE id <> 6)
         WHERE 3 >= r AND id > 1;",
    ),
    (
        "window-deduplication-first-and-last-row",
        "CREATE TABLE last_per_customer (ws TIMESTAMP(3), we TIMESTAMP(3), customer STRING, id INT,
                                         ts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/last_per_customer', 'format' = 'csv');
         INSERT INTO last_per_customer
         SELECT window_start, window_end, customer, id, ts FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, customer
                                        ORDER BY ts DESC) AS rownum
           FROM TABLE(HOP(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)))
         WHERE rownum = 1;
         CREATE TABLE first_per_window (we TIMESTAMP(3), id INT, customer STRING, amount DOUBLE,
                                        rn BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/first_per_window', 'format' = 'csv');
         INSERT INTO first_per_window
         SELECT window_end, id, customer, amount, rn FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY ts) AS rn
           FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND)))
         WHERE rn < 2;",
    ),
    (
        "window-top-n-after-a-window-aggregation",
        "CREATE TABLE top_customers (ws TIMESTAMP(3), we TIMESTAMP(3), customer STRING, price DOUBLE,
                                     cnt BIGINT, rownum BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/top_customers', 'format' = 'csv');
         INSERT INTO top_customers
         SELECT * FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                                        ORDER BY price DESC) AS rownum
           FROM (
             SELECT window_start, window_end, customer, SUM(amount) AS price, COUNT(*) AS cnt
             FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
             GROUP BY window_start, window_end, customer))
         WHERE rownum <= 2;
         CREATE VIEW counts AS
           SELECT window_start, window_end, customer, COUNT(*) AS cnt
           FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
           GROUP BY window_start, window_end, customer;
         CREATE TABLE busiest (we TIMESTAMP(3), customer STRING, cnt BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/busiest', 'format' = 'csv');
         INSERT INTO busiest
         SELECT window_end, customer, cnt FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                                        ORDER BY cnt DESC, customer) AS rownum
           FROM counts)
         WHERE rownum = 1;",
    ),
    (
        "window-top-n-over-and-after-session-windows",
        "CREATE TABLE best_in_session (ws TIMESTAMP(3), we TIMESTAMP(3), customer STRING, id INT,
                                       amount DOUBLE, rownum BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/best_in_session', 'format' = 'csv');
         INSERT INTO best_in_session
         SELECT window_start, window_end, customer, id, amount, rownum FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, customer
                                        ORDER BY amount DESC) AS rownum
           FROM TABLE(SESSION(TABLE orders PARTITION BY customer, DESCRIPTOR(ts), INTERVAL '10' SECOND)))
         WHERE rownum <= 1;
         CREATE TABLE biggest_burst (ws TIMESTAMP(3), we TIMESTAMP(3), cnt BIGINT, min_id INT,
                                     rownum BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/biggest_burst', 'format' = 'csv');
         INSERT INTO biggest_burst
         SELECT * FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                                        ORDER BY cnt DESC, min_id) AS rownum
           FROM (
             SELECT window_start, window_end, COUNT(*) AS cnt, MIN(id) AS min_id
             FROM TABLE(SESSION(TABLE orders, DESCRIPTOR(ts), INTERVAL '3' SECOND))
             GROUP BY window_start, window_end))
         WHERE rownum <= 1;",
    ),
    (
        "string-functions-and-like",
        "CREATE TABLE strs (id INT, sub STRING, sub2 STRING, tr STRING, rep STRING, pos INT,
                            l STRING, r STRING, lp STRING, rp STRING, ic STRING, rev STRING,
                            rr STRING, re STRING, si STRING, cw STRING, rpt STRING, lk BOOLEAN,
                            nlk BOOLEAN, esc BOOLEAN, ltr STRING, rtr STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/strs', 'format' = 'csv');
         INSERT INTO strs
         SELECT id, SUBSTRING(customer FROM 2 FOR 3), SUBSTR(customer, -2), TRIM(BOTH 'a' FROM customer),
                REPLACE(customer, 'l', 'L'), POSITION('o' IN customer), LEFT(customer, qty),
                RIGHT(customer, 2), LPAD(customer, 7, '*-'), RPAD(customer, qty, '.'),
                INITCAP(CONCAT(customer, ' x-yZ')), REVERSE(customer),
                REGEXP_REPLACE(customer, '[aeiou]', '_'),
                REGEXP_EXTRACT(customer, '([a-z])([a-z]+)', 2),
                SPLIT_INDEX(CAST(ts AS STRING), ':', 1),
                CONCAT_WS('|', customer, CAST(qty AS STRING), 'end'), REPEAT(customer, MOD(id, 3)),
                customer LIKE '%o%', customer NOT LIKE '_l%', CONCAT(customer, '%') LIKE '%!%' ESCAPE '!',
                LTRIM(CONCAT('  ', customer, ' ')), RTRIM(CONCAT('  ', customer, ' '))
         FROM orders;
         CREATE TABLE liked (id INT, customer STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/liked', 'format' = 'csv');
         INSERT INTO liked
         SELECT id, customer FROM orders WHERE customer LIKE '_o%' OR customer LIKE '4_';",
    ),
    (
        "conditional-and-math-functions",
        "CREATE TABLE calc (id INT, iff STRING, nif INT, g DOUBLE, l INT, c DOUBLE, f DOUBLE,
                            r DOUBLE, r1 DOUBLE, ri INT, t DOUBLE, p DOUBLE, sq DOUBLE, e DOUBLE,
                            lnx DOUBLE, lgx DOUBLE, lg2 DOUBLE, sg DOUBLE, ci INT, si INT,
                            lgb DOUBLE, lgb1 DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/calc', 'format' = 'csv');
         INSERT INTO calc
         SELECT id, IF(amount > 5, customer, 'small'), NULLIF(qty, 4),
                GREATEST(amount, CAST(qty AS DOUBLE)), LEAST(qty, id, 3), CEIL(amount),
                FLOOR(amount), ROUND(amount), ROUND(amount, 1), ROUND(qty * 7, -1),
                TRUNCATE(amount, 0), POWER(qty, 2), SQRT(amount), EXP(qty), LN(amount),
                LOG10(amount), LOG2(qty), SIGN(amount), CEILING(qty), SIGN(qty - 4),
                LOG(3, qty), LOG(amount)
         FROM orders;",
    ),
    (
        "temporal-and-json-functions",
        "CREATE TABLE times (id INT, y BIGINT, mo BIGINT, d BIGINT, h BIGINT, mi BIGINT, s BIGINT,
                             dow BIGINT, doy BIGINT, wk BIGINT, q BIGINT, yr BIGINT, hr BIGINT,
                             fmt STRING, fl TIMESTAMP(3), ce TIMESTAMP(3), flm TIMESTAMP(3),
                             added TIMESTAMP(3), later TIMESTAMP(3), diff_s INT, diff_mo INT,
                             dt DATE, dts STRING, dtt TIMESTAMP(3), dd BIGINT, is_day BOOLEAN,
                             lit DATE, short_dt DATE)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/times', 'format' = 'csv');
         INSERT INTO times
         SELECT id, EXTRACT(YEAR FROM ts), EXTRACT(MONTH FROM ts), EXTRACT(DAY FROM ts),
                EXTRACT(HOUR FROM ts), EXTRACT(MINUTE FROM ts), EXTRACT(SECOND FROM ts),
                EXTRACT(DOW FROM ts), EXTRACT(DOY FROM ts), EXTRACT(WEEK FROM ts), QUARTER(ts),
                YEAR(ts), HOUR(ts), DATE_FORMAT(ts, 'yyyy/MM/dd HH:mm:ss.SSS EEE'),
                FLOOR(ts TO MINUTE), CEIL(ts TO SECOND), FLOOR(ts TO MONTH),
                TIMESTAMPADD(MONTH, qty, ts), TIMESTAMPADD(SECOND, id, ts),
                TIMESTAMPDIFF(SECOND, TIMESTAMP '2024-01-01 00:00:10', ts),
                TIMESTAMPDIFF(MONTH, TIMESTAMP '2023-10-31 12:00:00', TIMESTAMPADD(MONTH, qty, ts)),
                CAST(TIMESTAMPADD(MONTH, qty, ts) AS DATE), CAST(CAST(ts AS DATE) AS STRING),
                CAST(DATE '2024-02-29' AS TIMESTAMP(3)), EXTRACT(DAY FROM CAST(ts AS DATE)),
                CAST(TIMESTAMPADD(DAY, qty, ts) AS DATE) = DATE '2024-01-05', DATE '1969-12-31',
                CAST(CONCAT('2024-', CAST(qty AS STRING), '-5') AS DATE)
         FROM orders;
         CREATE TABLE json (id INT, c STRING, q INT, half STRING, missing STRING, obj STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/json', 'format' = 'csv');
         INSERT INTO json
         SELECT id, JSON_VALUE(doc, '$.c'), JSON_VALUE(doc, '$.q[0]' RETURNING INT),
                JSON_VALUE(doc, '$.q[1]'), JSON_VALUE(doc, '$.x'), JSON_VALUE(doc, '$.q')
         FROM (SELECT id, CONCAT('{\"c\": \"', customer, '\", \"q\": [', CAST(qty AS STRING),
                                 ', 2.50]}') AS doc FROM orders);",
    ),
    (
        "tinyint-smallint-and-float-columns",
        "CREATE TABLE typed (
           id TINYINT, customer STRING, amount DECIMAL(10, 2), qty SMALLINT, ts TIMESTAMP(3),
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
         ) WITH ('connector' = 'filesystem', 'path' = '{dir}/orders.csv', 'format' = 'csv',
                 'csv.null-literal' = '');
         CREATE TABLE floats (
           id INT, customer STRING, amount FLOAT, qty TINYINT, ts TIMESTAMP(3),
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
         ) WITH ('connector' = 'filesystem', 'path' = '{dir}/orders.csv', 'format' = 'csv',
                 'csv.null-literal' = '');
         CREATE TABLE small_ints (id TINYINT, twice TINYINT, wrapped TINYINT, t30 TINYINT,
                                  sq SMALLINT, big SMALLINT, neg TINYINT, half TINYINT, rem INT,
                                  quarter DOUBLE, dist SMALLINT, txt STRING, back TINYINT,
                                  num TINYINT, gt BOOLEAN, mixed INT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/small_ints', 'format' = 'csv');
         INSERT INTO small_ints
         SELECT id, id + id, CAST(id * 50 AS TINYINT), id * CAST(30 AS TINYINT), qty * qty,
                qty * CAST(5000 AS SMALLINT), -id, id / CAST(2 AS TINYINT), id % 3,
                CAST(id AS DOUBLE) / 4, ABS(qty - CAST(5 AS SMALLINT)), CAST(id AS STRING),
                CAST(CAST(qty AS STRING) AS TINYINT), TRY_CAST(customer AS TINYINT), id > qty,
                id + qty * 1000
         FROM typed;
         CREATE TABLE float_calc (id INT, a FLOAT, a3 FLOAT, aq FLOAT, a_3 FLOAT, ad DOUBLE,
                                  s STRING, i INT, plus DOUBLE, c FLOAT, gt BOOLEAN, neg FLOAT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/float_calc', 'format' = 'csv');
         INSERT INTO float_calc
         SELECT id, amount, amount * 3, amount + qty, amount / 3, CAST(amount AS DOUBLE),
                CAST(amount AS STRING), CAST(amount AS INT), amount + 0.1,
                CAST('0.1' AS FLOAT) * 3, amount > 7.2, -amount
         FROM floats;
         CREATE TABLE typed_windows (ws TIMESTAMP(3), we TIMESTAMP(3), cnt BIGINT, sid TINYINT,
                                     wrapped TINYINT, aid TINYINT, sq SMALLINT, aq SMALLINT,
                                     sdq SMALLINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/typed_windows', 'format' = 'csv');
         INSERT INTO typed_windows
         SELECT window_start, window_end, COUNT(*), SUM(id), SUM(CAST(id * 20 AS TINYINT)),
                AVG(id), SUM(qty), AVG(qty), SUM(DISTINCT qty)
         FROM TABLE(TUMBLE(TABLE typed, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end;
         CREATE TABLE float_windows (ws TIMESTAMP(3), customer STRING, total FLOAT, avg_a FLOAT,
                                     max_a FLOAT, qtys TINYINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/float_windows', 'format' = 'csv');
         INSERT INTO float_windows
         SELECT window_start, customer, SUM(amount), AVG(amount), MAX(amount), SUM(qty)
         FROM TABLE(TUMBLE(TABLE floats, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end, customer;",
    ),
    (
        "decimal-arithmetic-casts-and-aggregates",
        "CREATE TABLE typed (
           id TINYINT, customer STRING, amount DECIMAL(10, 2), qty SMALLINT, ts TIMESTAMP(3),
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
         ) WITH ('connector' = 'filesystem', 'path' = '{dir}/orders.csv', 'format' = 'csv',
                 'csv.null-literal' = '');
         CREATE TABLE decimals (id TINYINT, a DECIMAL(10, 2), plus_one DECIMAL(13, 2),
                                times_q DECIMAL(16, 2), third DECIMAL(21, 13), sq DECIMAL(21, 4),
                                less DECIMAL(12, 3), per_q DECIMAL(16, 8), m DECIMAL(10, 2),
                                neg DECIMAL(10, 2), ab DECIMAL(10, 2), s STRING, i INT,
                                d DOUBLE, r1 DECIMAL(3, 1), r0 DECIMAL(2, 0), gt BOOLEAN,
                                eq BOOLEAN, x15 DECIMAL(13, 3), half_q DECIMAL(7, 1),
                                dbl DOUBLE, num DECIMAL(5, 2), co DECIMAL(12, 2),
                                cs DECIMAL(10, 2))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/decimals', 'format' = 'csv');
         INSERT INTO decimals
         SELECT id, amount, amount + 1, amount * qty, amount / 3, amount * amount,
                amount - 0.005, amount / qty, MOD(amount, 2), -amount, ABS(amount),
                CAST(amount AS STRING), CAST(amount AS INT), CAST(amount AS DOUBLE),
                CAST(amount AS DECIMAL(3, 1)), CAST(amount AS DECIMAL(2, 0)), amount > 7.2,
                amount = 7.25, amount * 1.5, qty * 0.5, amount + CAST(qty AS DOUBLE),
                TRY_CAST(customer AS DECIMAL(5, 2)), COALESCE(amount, 0),
                CASE WHEN amount > 5 THEN amount ELSE 0.5 END
         FROM typed;
         CREATE TABLE decimal_texts (id TINYINT, a STRING, plus_one STRING, third STRING,
                                     sq STRING, less STRING, per_q STRING, m STRING,
                                     x15 STRING, half_q STRING, cs STRING, r1 STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/decimal_texts', 'format' = 'csv');
         INSERT INTO decimal_texts
         SELECT id, CAST(amount AS STRING), CAST(amount + 1 AS STRING),
                CAST(amount / 3 AS STRING), CAST(amount * amount AS STRING),
                CAST(amount - 0.005 AS STRING), CAST(amount / qty AS STRING),
                CAST(MOD(amount, 2) AS STRING), CAST(amount * 1.5 AS STRING),
                CAST(qty * 0.5 AS STRING),
                CAST(CASE WHEN amount > 5 THEN amount ELSE 0.5 END AS STRING),
                CAST(CAST(amount AS DECIMAL(3, 1)) AS STRING)
         FROM typed;
         CREATE TABLE decimal_windows (ws TIMESTAMP(3), customer STRING, total DECIMAL(38, 2),
                                       avg_a DECIMAL(38, 6), min_a DECIMAL(10, 2),
                                       max_a DECIMAL(10, 2), n BIGINT,
                                       avg_third DECIMAL(38, 13), total_text STRING,
                                       avg_text STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/decimal_windows', 'format' = 'csv');
         INSERT INTO decimal_windows
         SELECT window_start, customer, SUM(amount), AVG(amount), MIN(amount), MAX(amount),
                COUNT(amount), AVG(amount / 3), CAST(SUM(amount) AS STRING),
                CAST(AVG(amount) AS STRING)
         FROM TABLE(TUMBLE(TABLE typed, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end, customer;",
    ),
    (
        "time-and-bytes",
        "CREATE TABLE times_bytes (id INT, t TIME(3), t0 TIME(0), later TIME(3), t_text STRING,
                                   t0_text STRING, lit TIME(1), after_ten BOOLEAN, b BYTES,
                                   b_text STRING, lit_b BYTES, below_b BOOLEAN, is_alice BOOLEAN,
                                   parsed TIME(0), no_time TIME(0))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/times_bytes', 'format' = 'csv');
         INSERT INTO times_bytes
         SELECT id, CAST(ts AS TIME(3)), CAST(ts AS TIME(0)),
                CAST(ts AS TIME(3)) + INTERVAL '23' HOUR, CAST(CAST(ts AS TIME(3)) AS STRING),
                CAST(CAST(ts AS TIME(0)) AS STRING), TIME '01:02:03.5',
                CAST(ts AS TIME(3)) > TIME '00:00:10', CAST(customer AS BYTES),
                CAST(CAST(customer AS BYTES) AS STRING), X'CAFE',
                CAST(customer AS BYTES) < X'62', CAST(customer AS BYTES) = X'616C696365',
                CAST('12:34' AS TIME), TRY_CAST(customer AS TIME)
         FROM orders;",
    ),
    (
        "union-all-widens-types-over-two-sources",
        "CREATE TABLE typed (id BIGINT, customer STRING, amount DECIMAL(10, 2), qty BIGINT,
                             ts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/orders.csv', 'format' = 'csv',
                 'csv.null-literal' = '');
         CREATE TABLE unioned (id BIGINT, src STRING, amount DOUBLE, q DECIMAL(11, 1), n BIGINT,
                               small SMALLINT, who STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/unioned', 'format' = 'csv');
         INSERT INTO unioned
         SELECT id, 'web', amount, qty, CAST(NULL AS INT), CAST(qty AS TINYINT), customer
         FROM orders
         UNION ALL
         SELECT id, 'store-x', amount, CAST(amount AS DECIMAL(5, 1)), qty, CAST(qty AS SMALLINT),
                UPPER(customer)
         FROM typed
         UNION ALL
         (SELECT id * 100, 'both', amount * 2, qty, id, CAST(NULL AS TINYINT), CAST(NULL AS STRING)
          FROM orders WHERE qty > 3);",
    ),
    (
        "tumble-window-over-a-union-all-view",
        "CREATE TABLE typed (id BIGINT, customer STRING, amount DECIMAL(10, 2), qty BIGINT,
                             ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '3' SECOND)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/orders.csv', 'format' = 'csv',
                 'csv.null-literal' = '');
         CREATE VIEW both_channels AS
           SELECT id, customer, amount, qty, 'web' AS channel, ts FROM orders
           UNION ALL
           SELECT id + 1000, customer, amount, qty, 'store' AS channel, ts FROM typed
           WHERE customer IS NOT NULL;
         CREATE TABLE per_channel (ws TIMESTAMP(3), we TIMESTAMP(3), channel STRING, cnt BIGINT,
                                   total DOUBLE, qtys BIGINT, max_id BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/per_channel', 'format' = 'csv');
         INSERT INTO per_channel
         SELECT window_start, window_end, channel, COUNT(*), SUM(amount), SUM(qty), MAX(id)
         FROM TABLE(TUMBLE(TABLE both_channels, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end, channel;
         CREATE TABLE top_of_union (we TIMESTAMP(3), id BIGINT, channel STRING, r BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/top_of_union', 'format' = 'csv');
         INSERT INTO top_of_union
         SELECT window_end, id, channel, rownum FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                                        ORDER BY id DESC) AS rownum
           FROM TABLE(TUMBLE(TABLE both_channels, DESCRIPTOR(ts), INTERVAL '10' SECOND)))
         WHERE rownum <= 2;",
    ),
    (
        "raw-format-lines-as-string-and-bytes",
        "CREATE TABLE order_lines (line STRING)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/orders.csv', 'format' = 'raw');
         CREATE TABLE order_bytes (b BYTES)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/orders.csv', 'format' = 'raw');
         CREATE TABLE parsed (line STRING, n INT, customer STRING, ts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/parsed', 'format' = 'csv');
         INSERT INTO parsed
         SELECT line, CHAR_LENGTH(line), SPLIT_INDEX(line, ',', 1),
                TO_TIMESTAMP(SPLIT_INDEX(line, ',', 4))
         FROM order_lines WHERE line LIKE '%alice%' OR line LIKE '%,,%';
         CREATE TABLE blobs (b BYTES, is_first BOOLEAN)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/blobs', 'format' = 'csv');
         INSERT INTO blobs SELECT b, b < X'32' FROM order_bytes;",
    ),
    // Updating queries (issue 18): their sinks are `print` tables, which take changes; both
    // systems' rows are collected with their change kinds (`-U 2,alice` ...) and compared as
    // multisets of changes, which is stricter than comparing the tables they leave.
    (
        "group-by-without-windows-emits-updates",
        "CREATE TABLE per_customer (customer STRING, cnt BIGINT, amounts BIGINT, total DOUBLE,
                                    min_q INT, max_q INT, avg_q INT, avg_amount DOUBLE)
           WITH ('connector' = 'print');
         INSERT INTO per_customer
         SELECT customer, COUNT(*), COUNT(amount), SUM(amount), MIN(qty), MAX(qty), AVG(qty),
                AVG(amount)
         FROM orders GROUP BY customer;
         CREATE TABLE everything (cnt BIGINT, qty INT, distinct_customers BIGINT)
           WITH ('connector' = 'print');
         INSERT INTO everything SELECT COUNT(*), SUM(qty), COUNT(DISTINCT customer) FROM orders;",
    ),
    (
        "where-having-and-aggregates-of-an-updating-aggregate",
        "CREATE VIEW totals AS
           SELECT customer, SUM(qty) AS total, COUNT(*) AS cnt FROM orders
           WHERE amount IS NOT NULL GROUP BY customer;
         CREATE TABLE big (customer STRING, total INT) WITH ('connector' = 'print');
         INSERT INTO big SELECT customer, total FROM totals WHERE total > 3;
         CREATE TABLE by_count (cnt BIGINT, customers BIGINT, top INT, bottom INT, distinct_totals BIGINT)
           WITH ('connector' = 'print');
         INSERT INTO by_count
         SELECT cnt, COUNT(*), MAX(total), MIN(total), COUNT(DISTINCT total) FROM totals GROUP BY cnt;
         CREATE TABLE having_sum (customer STRING, s DOUBLE) WITH ('connector' = 'print');
         INSERT INTO having_sum
         SELECT customer, SUM(amount) AS s FROM orders GROUP BY customer HAVING SUM(amount) > 5;",
    ),
    (
        "regular-joins-inner-outer-and-comma",
        "CREATE TABLE inner_joined (id INT, customer STRING, city STRING, tier INT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/inner_joined', 'format' = 'csv');
         INSERT INTO inner_joined
         SELECT o.id, o.customer, c.city, tier FROM orders AS o JOIN customers AS c ON o.customer = c.name;
         CREATE TABLE comma_joined (id INT, tier INT, amount DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/comma_joined', 'format' = 'csv');
         INSERT INTO comma_joined
         SELECT o.id, c.tier, o.amount FROM orders o, customers c
         WHERE o.customer = c.name AND o.qty > c.tier;
         CREATE TABLE left_joined (id INT, customer STRING, city STRING)
           WITH ('connector' = 'print');
         INSERT INTO left_joined
         SELECT o.id, o.customer, c.city FROM orders o
         LEFT JOIN customers c ON o.customer = c.name AND c.tier > 1;
         CREATE TABLE right_joined (id INT, name STRING, city STRING)
           WITH ('connector' = 'print');
         INSERT INTO right_joined
         SELECT o.id, c.name, c.city FROM orders o RIGHT JOIN customers c ON o.customer = c.name;
         CREATE TABLE full_joined (id INT, customer STRING, name STRING, tier INT)
           WITH ('connector' = 'print');
         INSERT INTO full_joined
         SELECT o.id, o.customer, c.name, c.tier FROM orders o
         FULL OUTER JOIN customers c ON o.customer = c.name AND o.qty >= c.tier;",
    ),
    (
        "aggregates-over-a-join-and-a-join-of-an-aggregate",
        "CREATE TABLE per_city (city STRING, cnt BIGINT, total DOUBLE)
           WITH ('connector' = 'print');
         INSERT INTO per_city
         SELECT c.city, COUNT(*), SUM(o.amount) FROM orders o
         LEFT JOIN customers c ON o.customer = c.name GROUP BY c.city;
         CREATE VIEW spent AS SELECT customer, SUM(amount) AS total FROM orders GROUP BY customer;
         CREATE TABLE spent_by_city (name STRING, city STRING, total DOUBLE)
           WITH ('connector' = 'print');
         INSERT INTO spent_by_city
         SELECT c.name, c.city, s.total FROM customers c JOIN spent s ON c.name = s.customer;",
    ),
    (
        "top-n-and-deduplication-without-windows",
        "CREATE TABLE top_amounts (customer STRING, id INT, amount DOUBLE, rn BIGINT)
           WITH ('connector' = 'print');
         INSERT INTO top_amounts
         SELECT customer, id, amount, rn FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY customer ORDER BY amount DESC) AS rn
           FROM orders)
         WHERE rn <= 2;
         CREATE TABLE top_ids (id INT, amount DOUBLE) WITH ('connector' = 'print');
         INSERT INTO top_ids
         SELECT id, amount FROM (
           SELECT *, ROW_NUMBER() OVER (ORDER BY amount DESC) AS rn FROM orders)
         WHERE rn <= 3;
         CREATE TABLE first_orders (customer STRING, id INT) WITH ('connector' = 'print');
         INSERT INTO first_orders
         SELECT customer, id FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY customer ORDER BY ts) AS rn FROM orders)
         WHERE rn = 1;
         CREATE TABLE last_orders (customer STRING, id INT) WITH ('connector' = 'print');
         INSERT INTO last_orders
         SELECT customer, id FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY customer ORDER BY ts DESC) AS rn
           FROM orders)
         WHERE rn = 1;
         CREATE TABLE top_customers (customer STRING, total INT, rn BIGINT)
           WITH ('connector' = 'print');
         INSERT INTO top_customers
         SELECT * FROM (
           SELECT customer, total, ROW_NUMBER() OVER (ORDER BY total DESC) AS rn
           FROM (SELECT customer, SUM(qty) AS total FROM orders GROUP BY customer))
         WHERE rn <= 2;",
    ),
    (
        "over-aggregations-rows-range-and-unbounded",
        "CREATE TABLE over_rows (id INT, customer STRING, s INT, n BIGINT, top DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/over_rows', 'format' = 'csv');
         INSERT INTO over_rows
         SELECT id, customer, SUM(qty) OVER w, COUNT(*) OVER w, MAX(amount) OVER w
         FROM orders
         WINDOW w AS (PARTITION BY customer ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW);
         CREATE TABLE over_range (id INT, recent DOUBLE, low INT, cnt BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/over_range', 'format' = 'csv');
         INSERT INTO over_range
         SELECT id,
                SUM(amount) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW),
                MIN(qty) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW),
                COUNT(amount) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW)
         FROM orders WHERE id <> 9;
         CREATE TABLE over_unbounded (id INT, customer STRING, avg_q INT, distinct_q BIGINT, ts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/over_unbounded', 'format' = 'csv');
         INSERT INTO over_unbounded
         SELECT id, customer, AVG(qty) OVER (PARTITION BY customer ORDER BY ts),
                COUNT(DISTINCT qty) OVER (PARTITION BY customer ORDER BY ts), ts
         FROM orders;",
    ),
    (
        "match-recognize-v-shapes-and-runs",
        "CREATE TABLE v_shapes (symbol STRING, start_ts TIMESTAMP(3), bottom_ts TIMESTAMP(3),
                               end_ts TIMESTAMP(3), bottom INT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/v_shapes', 'format' = 'csv');
         INSERT INTO v_shapes
         SELECT * FROM ticks
         MATCH_RECOGNIZE (
           PARTITION BY symbol
           ORDER BY ts
           MEASURES
             START_ROW.ts AS start_ts,
             LAST(PRICE_DOWN.ts) AS bottom_ts,
             LAST(PRICE_UP.ts) AS end_ts,
             LAST(PRICE_DOWN.price) AS bottom
           ONE ROW PER MATCH
           AFTER MATCH SKIP TO LAST PRICE_UP
           PATTERN (START_ROW PRICE_DOWN+ PRICE_UP)
           DEFINE
             PRICE_DOWN AS
               (LAST(PRICE_DOWN.price, 1) IS NULL AND PRICE_DOWN.price < START_ROW.price) OR
               PRICE_DOWN.price < LAST(PRICE_DOWN.price, 1),
             PRICE_UP AS PRICE_UP.price > LAST(PRICE_DOWN.price, 1)
         ) AS T;
         CREATE TABLE rises (symbol STRING, first_price INT, last_price INT, steps BIGINT,
                            avg_price INT, peak INT, drop_to INT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/rises', 'format' = 'csv');
         INSERT INTO rises
         SELECT symbol, first_price, last_price, steps, avg_price, peak, drop_to FROM ticks
         MATCH_RECOGNIZE (
           PARTITION BY symbol
           ORDER BY ts
           MEASURES
             FIRST(UP.price) AS first_price,
             LAST(UP.price) AS last_price,
             COUNT(UP.price) AS steps,
             AVG(UP.price) AS avg_price,
             MAX(UP.price) AS peak,
             DOWN.price AS drop_to
           PATTERN (UP{2,} DOWN)
           DEFINE
             UP AS LAST(UP.price, 1) IS NULL OR UP.price > LAST(UP.price, 1),
             DOWN AS DOWN.price < LAST(UP.price)
         );
         CREATE TABLE dips (symbol STRING, start_price INT, low INT, back INT, n BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/dips', 'format' = 'csv');
         INSERT INTO dips
         SELECT * FROM ticks
         MATCH_RECOGNIZE (
           PARTITION BY symbol
           ORDER BY ts
           MEASURES A.price AS start_price, MIN(B.price) AS low, C.price AS back,
                    COUNT(B.price) AS n
           AFTER MATCH SKIP PAST LAST ROW
           PATTERN (A B+? C)
           DEFINE B AS B.price < A.price, C AS C.price >= A.price
         );",
    ),
    (
        // WITHIN bounds a match from its first row to its last, timed-out partial matches
        // are dropped: every V shape here spans 3 s (all kept at 4 s); runs of rises spanning
        // 3 s are on the bound at 3 s (Flink drops them), those spanning 2 s are kept.
        "match-recognize-within",
        "CREATE TABLE v_within (symbol STRING, start_ts TIMESTAMP(3), end_ts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/v_within', 'format' = 'csv');
         INSERT INTO v_within
         SELECT * FROM ticks
         MATCH_RECOGNIZE (
           PARTITION BY symbol
           ORDER BY ts
           MEASURES START_ROW.ts AS start_ts, LAST(PRICE_UP.ts) AS end_ts
           AFTER MATCH SKIP TO LAST PRICE_UP
           PATTERN (START_ROW PRICE_DOWN+ PRICE_UP) WITHIN INTERVAL '4' SECOND
           DEFINE
             PRICE_DOWN AS
               (LAST(PRICE_DOWN.price, 1) IS NULL AND PRICE_DOWN.price < START_ROW.price) OR
               PRICE_DOWN.price < LAST(PRICE_DOWN.price, 1),
             PRICE_UP AS PRICE_UP.price > LAST(PRICE_DOWN.price, 1)
         ) AS T;
         CREATE TABLE rises_within (symbol STRING, first_price INT, last_price INT, steps BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/rises_within', 'format' = 'csv');
         INSERT INTO rises_within
         SELECT * FROM ticks
         MATCH_RECOGNIZE (
           PARTITION BY symbol
           ORDER BY ts
           MEASURES FIRST(UP.price) AS first_price, LAST(UP.price) AS last_price,
                    COUNT(UP.price) AS steps
           PATTERN (UP{2,} DOWN) WITHIN INTERVAL '3' SECOND
           DEFINE
             UP AS LAST(UP.price, 1) IS NULL OR UP.price > LAST(UP.price, 1),
             DOWN AS DOWN.price < LAST(UP.price)
         );",
    ),
    (
        // Each order joins the price its symbol had at the order's time (inclusive), from a
        // table with a PRIMARY KEY and from a view keeping the last row per key; a LEFT join
        // keeps orders without a version or whose pair fails the rest of ON.
        "temporal-joins-of-versioned-tables",
        "CREATE TABLE prices (symbol STRING, price INT, ts TIMESTAMP(3),
                              PRIMARY KEY (symbol) NOT ENFORCED,
                              WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/ticks.csv', 'format' = 'csv');
         CREATE TABLE priced (id INT, symbol STRING, price INT, ots TIMESTAMP(3), pts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/priced', 'format' = 'csv');
         INSERT INTO priced
         SELECT o.id, p.symbol, p.price, o.ts, p.ts
         FROM orders AS o JOIN prices FOR SYSTEM_TIME AS OF o.ts AS p
         ON p.symbol = IF(MOD(o.id, 2) = 0, 'ACME', 'BETA');
         CREATE TABLE priced_left (id INT, symbol STRING, price INT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/priced_left', 'format' = 'csv');
         INSERT INTO priced_left
         SELECT o.id, p.symbol, p.price
         FROM orders AS o LEFT JOIN prices FOR SYSTEM_TIME AS OF o.ts AS p
         ON p.symbol = IF(MOD(o.id, 2) = 0, 'ACME', 'BETA') AND p.price > 12;
         CREATE VIEW last_tick AS
         SELECT symbol, price, ts FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY ts DESC) AS rn FROM ticks)
         WHERE rn = 1;
         CREATE TABLE priced_view (id INT, price INT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/priced_view', 'format' = 'csv');
         INSERT INTO priced_view
         SELECT o.id, t.price
         FROM orders AS o JOIN last_tick FOR SYSTEM_TIME AS OF o.ts AS t
         ON t.symbol = IF(MOD(o.id, 2) = 0, 'ACME', 'BETA');",
    ),
    (
        // GROUP BY expressions (repeated in the SELECT list, inside other expressions and in
        // HAVING) and aggregates with FILTER (WHERE ...), over NULLs.
        "group-by-expressions-and-filter",
        "CREATE TABLE by_band (band STRING, n BIGINT, many BIGINT, qty_sum INT, named BIGINT)
           WITH ('connector' = 'print');
         INSERT INTO by_band
         SELECT CASE WHEN amount > 5 THEN 'high' ELSE 'low' END, COUNT(*),
                COUNT(*) FILTER (WHERE qty > 2), SUM(qty) FILTER (WHERE customer IS NOT NULL),
                COUNT(DISTINCT customer) FILTER (WHERE amount > 1)
         FROM orders
         GROUP BY CASE WHEN amount > 5 THEN 'high' ELSE 'low' END
         HAVING COUNT(*) > 1;
         CREATE TABLE by_mod (m INT, next_m INT, total DOUBLE, low_max INT)
           WITH ('connector' = 'print');
         INSERT INTO by_mod
         SELECT MOD(id, 3), MOD(id, 3) + 1, SUM(amount), MAX(qty) FILTER (WHERE qty < 5)
         FROM orders WHERE id > 1
         GROUP BY MOD(id, 3)
         HAVING MOD(id, 3) <> 2 OR SUM(amount) > 0;",
    ),
    (
        "interval-joins-inner-and-outer",
        "CREATE TABLE near (id INT, symbol STRING, price INT, ots TIMESTAMP(3), tts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/near', 'format' = 'csv');
         INSERT INTO near
         SELECT o.id, t.symbol, t.price, o.ts, t.ts FROM orders o JOIN ticks t
         ON o.qty = t.price - 10
            AND o.ts BETWEEN t.ts - INTERVAL '5' SECOND AND t.ts + INTERVAL '2' SECOND;
         CREATE TABLE near_left (id INT, symbol STRING, price INT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/near_left', 'format' = 'csv');
         INSERT INTO near_left
         SELECT o.id, t.symbol, t.price FROM orders o LEFT JOIN ticks t
         ON o.qty = t.price - 10 AND t.ts >= o.ts - INTERVAL '3' SECOND AND t.ts < o.ts + INTERVAL '4' SECOND;
         CREATE TABLE near_full (id INT, symbol STRING, tts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/near_full', 'format' = 'csv');
         INSERT INTO near_full
         SELECT o.id, t.symbol, t.ts FROM orders o FULL JOIN ticks t
         ON o.qty = t.price - 10 AND o.ts BETWEEN t.ts AND t.ts + INTERVAL '10' SECOND;",
    ),
    (
        "window-joins",
        "CREATE TABLE wj_inner (a_id INT, b_id INT, customer STRING, ws TIMESTAMP(3), we TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/wj_inner', 'format' = 'csv');
         INSERT INTO wj_inner
         SELECT a.id, b.id, a.customer, a.window_start, b.window_end
         FROM (SELECT * FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))) a
         JOIN (SELECT * FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))) b
         ON a.customer = b.customer AND a.window_start = b.window_start
            AND a.window_end = b.window_end AND a.id <= b.id;
         CREATE TABLE wj_left (id INT, symbol STRING, price INT, ws TIMESTAMP(3), wt TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/wj_left', 'format' = 'csv');
         INSERT INTO wj_left
         SELECT o.id, t.symbol, t.price, o.window_start, t.window_time
         FROM (SELECT * FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND))) o
         LEFT JOIN (SELECT * FROM TABLE(TUMBLE(TABLE ticks, DESCRIPTOR(ts), INTERVAL '5' SECOND))) t
         ON o.qty = t.price - 10 AND o.window_start = t.window_start AND o.window_end = t.window_end;
         CREATE TABLE wj_full (id INT, symbol STRING, price INT, ws TIMESTAMP(3), we TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/wj_full', 'format' = 'csv');
         INSERT INTO wj_full
         SELECT o.id, t.symbol, t.price, COALESCE(o.window_start, t.window_start),
                COALESCE(o.window_end, t.window_end)
         FROM (SELECT id, qty, window_start, window_end
               FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND))) o
         FULL JOIN (SELECT * FROM TABLE(TUMBLE(TABLE ticks, DESCRIPTOR(ts), INTERVAL '5' SECOND))
                    WHERE symbol = 'ACME') t
         ON o.qty = t.price - 10 AND o.window_start = t.window_start AND o.window_end = t.window_end;
         CREATE TABLE wj_hop (id INT, symbol STRING, ws TIMESTAMP(3), we TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/wj_hop', 'format' = 'csv');
         INSERT INTO wj_hop
         SELECT o.id, t.symbol, o.window_start, o.window_end
         FROM (SELECT * FROM TABLE(HOP(TABLE orders, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '4' SECOND))) o
         RIGHT JOIN (SELECT * FROM TABLE(HOP(TABLE ticks, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '4' SECOND))) t
         ON t.window_start = o.window_start AND o.qty = t.price - 10 AND t.window_end = o.window_end;
         CREATE VIEW cumulated AS
           SELECT * FROM TABLE(CUMULATE(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND));
         CREATE TABLE wj_cumulate (a_id INT, b_id INT, we TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/wj_cumulate', 'format' = 'csv');
         INSERT INTO wj_cumulate
         SELECT a.id, b.id, a.window_end FROM cumulated a JOIN cumulated b
         ON a.window_start = b.window_start AND a.window_end = b.window_end AND a.id + 1 = b.id;
         CREATE TABLE wj_counts (orders BIGINT, ticks BIGINT, ws TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/wj_counts', 'format' = 'csv');
         INSERT INTO wj_counts
         SELECT o.cnt, t.cnt, COALESCE(o.window_start, t.window_start)
         FROM (SELECT window_start, window_end, COUNT(*) AS cnt
               FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND))
               GROUP BY window_start, window_end) o
         FULL JOIN (SELECT window_start, window_end, COUNT(*) AS cnt
                    FROM TABLE(TUMBLE(TABLE ticks, DESCRIPTOR(ts), INTERVAL '5' SECOND))
                    GROUP BY window_start, window_end) t
         ON o.window_start = t.window_start AND o.window_end = t.window_end;",
    ),
    (
        "window-tvf-rows",
        "CREATE TABLE tvf_rows (id INT, ws TIMESTAMP(3), we TIMESTAMP(3), wt TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/tvf_rows', 'format' = 'csv');
         INSERT INTO tvf_rows
         SELECT id, window_start, window_end, window_time
         FROM TABLE(HOP(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
         WHERE qty IS NOT NULL;
         CREATE TABLE tvf_top (id INT, customer STRING, we TIMESTAMP(3), rn BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/tvf_top', 'format' = 'csv');
         INSERT INTO tvf_top
         SELECT id, customer, window_end, rn FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY id DESC) AS rn
           FROM (SELECT id, customer, window_start, window_end
                 FROM TABLE(CUMULATE(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND,
                                     INTERVAL '10' SECOND))))
         WHERE rn <= 2;",
    ),
    (
        "legacy-group-windows",
        "CREATE TABLE legacy_tumble (customer STRING, ws TIMESTAMP(3), we TIMESTAMP(3), cnt BIGINT,
                                     total DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/legacy_tumble', 'format' = 'csv');
         INSERT INTO legacy_tumble
         SELECT customer, TUMBLE_START(ts, INTERVAL '10' SECOND),
                TUMBLE_END(ts, INTERVAL '10' SECOND), COUNT(*), SUM(amount)
         FROM orders GROUP BY TUMBLE(ts, INTERVAL '10' SECOND), customer;
         CREATE TABLE legacy_hop (we TIMESTAMP(3), rt TIMESTAMP(3), cnt BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/legacy_hop', 'format' = 'csv');
         INSERT INTO legacy_hop
         SELECT HOP_END(ts, INTERVAL '5' SECOND, INTERVAL '10' SECOND),
                HOP_ROWTIME(ts, INTERVAL '5' SECOND, INTERVAL '10' SECOND), COUNT(*)
         FROM orders WHERE qty IS NOT NULL
         GROUP BY HOP(ts, INTERVAL '5' SECOND, INTERVAL '10' SECOND) HAVING COUNT(*) > 1;
         CREATE TABLE legacy_session (customer STRING, ss TIMESTAMP(3), se TIMESTAMP(3), cnt BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{dir}/legacy_session', 'format' = 'csv');
         INSERT INTO legacy_session
         SELECT customer, SESSION_START(ts, INTERVAL '5' SECOND), SESSION_END(ts, INTERVAL '5' SECOND),
                COUNT(*)
         FROM orders GROUP BY customer, SESSION(ts, INTERVAL '5' SECOND);",
    ),
];

/// Runs a script on Fjord and returns each sink's rows: the files of each sink directory, or,
/// when the script writes `print` tables (updating queries), the rows each INSERT's query
/// produced, collected with their change kinds as the Flink side prints them.
fn fjord_rows(script: &str, dir: &Path, sinks: &[String]) -> BTreeMap<String, Vec<String>> {
    let job = fjord_sql::plan(script).unwrap_or_else(|e| panic!("Fjord refused the script: {e}"));
    let env = StreamExecutionEnvironment::new();
    if job.inserts.iter().any(|i| i.sink.connector() == "print") {
        let collected = fjord_sql::build_collecting(&job, &env).unwrap();
        env.execute("sql oracle case").unwrap();
        let csv = fjord_sql::connectors::format::Format::Csv {
            delimiter: b',',
            null_literal: Some(String::new()),
        };
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for ((sink, changes), insert) in collected.iter().zip(&job.inserts) {
            for c in changes.values() {
                let bytes =
                    fjord_sql::connectors::format::encode(&csv, &insert.pipeline.schema, &c.row)
                        .unwrap();
                let line = String::from_utf8(bytes).unwrap().trim_end().to_string();
                let line = match c.kind {
                    fjord_sql::changelog::RowKind::Insert => line,
                    kind => format!("{} {line}", kind.short()),
                };
                out.entry(sink.clone()).or_default().push(line);
            }
        }
        return out;
    }
    fjord_sql::build(&job, &env).unwrap();
    env.execute("sql oracle case").unwrap();
    let mut out = BTreeMap::new();
    for sink in sinks {
        let mut lines = Vec::new();
        for entry in std::fs::read_dir(dir.join(sink)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            lines.extend(text.lines().map(str::to_string));
        }
        out.insert(sink.clone(), lines);
    }
    out
}

/// Set `FJORD_SQL_ORACLE_CASES=name,name` to run only those cases (each runs a JVM).
#[test]
fn fjord_sql_matches_flink_sql_on_the_same_script_and_input() {
    let only = std::env::var("FJORD_SQL_ORACLE_CASES").unwrap_or_default();
    let only: Vec<&str> = only.split(',').filter(|n| !n.is_empty()).collect();
    // Every case's script first, so one Flink JVM runs them all (its start and the planner's
    // unpacking cost more than most cases).
    let mut cases = Vec::new();
    for (name, statements) in CASES {
        if !only.is_empty() && !only.contains(name) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("orders.csv"), ORDERS).unwrap();
        std::fs::write(dir.path().join("customers.csv"), CUSTOMERS).unwrap();
        // Prices of two symbols with falls and rises (docs/sql.md's MATCH_RECOGNIZE data).
        let ticks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sql/ticks.csv");
        std::fs::copy(ticks, dir.path().join("ticks.csv")).unwrap();
        // Nested JSON for the composite-type case: docs/sql.md's example data.
        let example =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sql/nested_orders.json");
        std::fs::copy(example, dir.path().join("nested.json")).unwrap();
        let script =
            format!("{ORDERS_DDL}{statements}").replace("{dir}", &dir.path().display().to_string());
        let script_path = dir.path().join("job.sql");
        std::fs::write(&script_path, &script).unwrap();
        cases.push((*name, dir, script, script_path));
    }
    let paths: Vec<_> = cases.iter().map(|c| c.3.clone()).collect();
    let results = run_sql_scripts(&paths).unwrap_or_else(|e| panic!("{e}"));
    for ((name, dir, script, _), mut flink) in cases.into_iter().zip(results) {
        let sinks: Vec<String> = flink.keys().cloned().collect();
        assert!(!sinks.is_empty(), "{name}: Flink printed no sink");
        let mut fjord = fjord_rows(&script, dir.path(), &sinks);
        for rows in flink.values_mut().chain(fjord.values_mut()) {
            rows.sort();
        }
        assert!(
            flink.values().all(|rows| !rows.is_empty()),
            "{name}: a case whose result is empty compares nothing: {flink:?}"
        );
        // A sink fed through a shuffle of an updating result (an aggregate of an aggregate)
        // receives the changes of keys from different subtasks in an order neither system
        // fixes: its changelog is compared by the table it leaves once applied.
        for sink in &sinks {
            if SHUFFLED_CHANGELOGS.contains(&sink.as_str()) {
                let (f, l) = (&fjord[sink], &flink[sink]);
                assert_eq!(
                    materialized(f),
                    materialized(l),
                    "{name}: the tables Fjord's (left) and Flink's (right) changes leave in '{sink}' differ; changes: {f:?} vs {l:?}"
                );
                fjord.remove(sink);
                flink.remove(sink);
            }
        }
        assert_eq!(
            fjord, flink,
            "{name}: Fjord (left) and Flink (right) differ"
        );
    }
}

/// Sinks whose changes depend on how the inputs interleave (see above): after a shuffle of an
/// updating result, and outer joins (whether a row first appears padded with NULLs depends on
/// which side's rows arrive first).
const SHUFFLED_CHANGELOGS: &[&str] = &[
    "by_count",
    "left_joined",
    "right_joined",
    "full_joined",
    "per_city",
    "spent_by_city",
    "top_customers",
];

/// The rows a changelog (`-U row`, `+U row`, `-D row`, or a bare inserted row per line) leaves
/// once applied, with their counts.
fn materialized(lines: &[String]) -> BTreeMap<String, usize> {
    let changes = lines.iter().map(|l| {
        match l
            .split_once(' ')
            .and_then(|(k, r)| Some((fjord_sql::changelog::RowKind::parse(k)?, r)))
        {
            Some((kind, row)) => (kind, row.to_string()),
            None => (fjord_sql::changelog::RowKind::Insert, l.clone()),
        }
    });
    fjord_sql::changelog::materialize(changes).unwrap_or_else(|e| panic!("{e}: {lines:?}"))
}

/// The tumble-window case with `orders` read from a Kafka topic (CSV values, bounded at the
/// latest offsets) and the result written to another topic in Kafka transactions (JSON values,
/// exactly-once), then read back (`read_committed`) by a second script into CSV files: the rows
/// must equal Flink's for the same query over the same rows in a file. A real Kafka 4.4 broker.
#[test]
fn fjord_sql_over_kafka_topics_matches_flink_sql_over_the_same_rows() {
    let broker = KafkaBroker::start_with(KafkaOptions::new("sql-oracle")).unwrap();
    let bootstrap = broker.bootstrap().to_string();
    broker.create_topic("orders", 1).unwrap();
    broker.create_topic("per_customer", 1).unwrap();
    let lines: Vec<&str> = ORDERS.lines().filter(|l| !l.is_empty()).collect();
    broker.produce_lines("orders", &lines).unwrap();

    let (_, statements) = CASES
        .iter()
        .find(|(name, _)| *name == "tumble-window-aggregation")
        .expect("the tumble case");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orders.csv"), ORDERS).unwrap();
    std::fs::write(dir.path().join("customers.csv"), CUSTOMERS).unwrap();
    let ticks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sql/ticks.csv");
    std::fs::copy(ticks, dir.path().join("ticks.csv")).unwrap();
    let flink_script =
        format!("{ORDERS_DDL}{statements}").replace("{dir}", &dir.path().display().to_string());
    let flink_path = dir.path().join("flink.sql");
    std::fs::write(&flink_path, &flink_script).unwrap();
    let mut flink = run_sql_script(&flink_path)
        .unwrap()
        .remove("per_customer")
        .unwrap();

    let columns = "ws TIMESTAMP(3), we TIMESTAMP(3), customer STRING, cnt BIGINT, amounts BIGINT,
                   total DOUBLE, min_q INT, max_q INT, avg_q INT, avg_amount DOUBLE";
    let kafka = |topic: &str, rest: &str| {
        format!(
            "'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}', {rest}"
        )
    };
    let write = format!(
        "SET 'parallelism.default' = '2';
         SET 'execution.checkpointing.interval' = '1s';
         CREATE TABLE orders (
           id INT, customer STRING, amount DOUBLE, qty INT, ts TIMESTAMP(3),
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
         ) WITH ({});
         CREATE TABLE per_customer ({columns}) WITH ({});
         INSERT INTO per_customer
         SELECT window_start, window_end, customer, COUNT(*), COUNT(amount), SUM(amount),
                MIN(qty), MAX(qty), AVG(qty), AVG(amount)
         FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end, customer;",
        kafka(
            "orders",
            "'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
             'format' = 'csv', 'csv.null-literal' = ''"
        ),
        kafka(
            "per_customer",
            "'format' = 'json', 'sink.delivery-guarantee' = 'exactly-once',
             'sink.transactional-id-prefix' = 'sql-oracle'"
        ),
    );
    let read_back = format!(
        "CREATE TABLE per_customer ({columns}) WITH ({});
         CREATE TABLE out ({columns})
           WITH ('connector' = 'filesystem', 'path' = '{}/out', 'format' = 'csv');
         INSERT INTO out SELECT * FROM per_customer;",
        kafka(
            "per_customer",
            "'properties.isolation.level' = 'read_committed',
             'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
             'format' = 'json'"
        ),
        dir.path().display()
    );
    fjord_rows(&write, dir.path(), &[]);
    // The last transaction's commit markers reach the partition shortly after the job ends;
    // a bounded read_committed reader stops at the last stable offset it first sees, so wait
    // until every row is readable, as a downstream job started right after would have to.
    let expected = flink.len();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while broker.read_committed("per_customer").unwrap().len() < expected
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut fjord = fjord_rows(&read_back, dir.path(), &["out".to_string()])
        .remove("out")
        .unwrap();
    flink.sort();
    fjord.sort();
    assert!(
        !flink.is_empty(),
        "Flink produced no rows: nothing compared"
    );
    assert_eq!(
        fjord, flink,
        "Fjord over Kafka (left) and Flink over the file (right) differ"
    );
    broker.shutdown().unwrap();
}
