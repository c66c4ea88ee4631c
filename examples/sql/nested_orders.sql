-- Nested JSON: a ROW with a nested ROW, an ARRAY and a MAP per order, and an epoch-millisecond
-- field read as a TIMESTAMP_LTZ(3) rowtime. Run from the repository root:
--   fjord sql -f examples/sql/nested_orders.sql
CREATE TABLE orders (
  id       INT,
  customer ROW<name STRING, address ROW<city STRING, zip STRING>>,
  tags     ARRAY<STRING>,
  attrs    MAP<STRING, STRING>,
  ts       BIGINT,
  rowtime  AS TO_TIMESTAMP_LTZ(ts, 3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path'      = 'examples/sql/nested_orders.json',
  'format'    = 'json'
);

CREATE TABLE flat_orders (
  id        INT,
  name      STRING,
  city      STRING,
  first_tag STRING,
  n_tags    INT,
  color     STRING,
  customer  STRING
) WITH ('connector' = 'print', 'print-identifier' = 'flat');

-- Fields with dots (a leading table name is allowed), array elements from 1, map values by
-- key; each is NULL when anything on its way is NULL or missing.
INSERT INTO flat_orders
SELECT id, customer.name, orders.customer.address.city, tags[1], CARDINALITY(tags),
       attrs['color'], CAST(customer AS STRING)
FROM orders;

CREATE TABLE per_window (
  window_start TIMESTAMP(3),
  window_end   TIMESTAMP(3),
  orders       BIGINT,
  cities       ARRAY<STRING>
) WITH ('connector' = 'print', 'print-identifier' = 'window');

-- A tumbling window over the TIMESTAMP_LTZ rowtime; the session time zone is UTC.
INSERT INTO per_window
SELECT window_start, window_end, COUNT(*), ARRAY[MIN(customer.address.city), MAX(customer.address.city)]
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(rowtime), INTERVAL '10' SECOND))
GROUP BY window_start, window_end;
