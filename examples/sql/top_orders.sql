-- The two biggest orders of every 10-second window, and each customer's last order per
-- window (window Top-N and window deduplication), printed as Flink's print connector does.
-- Run from the repository root:
--   fjord sql -f examples/sql/top_orders.sql
--   fjord sql --explain -f examples/sql/top_orders.sql
SET 'parallelism.default' = '2';

CREATE TABLE orders (
  id       INT,
  customer STRING,
  amount   DOUBLE,
  qty      INT,
  ts       TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path'      = 'examples/sql/orders.csv',
  'format'    = 'csv',
  'csv.null-literal' = ''
);

CREATE TABLE top_orders (
  window_end TIMESTAMP(3),
  id         INT,
  amount     DOUBLE,
  rownum     BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'top');

-- Window Top-N: rank the rows of each window, keep those with rownum <= 2. NULL amounts
-- rank last in DESC order (first in ASC order), as in Flink.
INSERT INTO top_orders
SELECT window_end, id, amount, rownum FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                               ORDER BY amount DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND)))
WHERE rownum <= 2;

CREATE TABLE last_orders (
  window_end TIMESTAMP(3),
  customer   STRING,
  id         INT
) WITH ('connector' = 'print', 'print-identifier' = 'last');

-- Window deduplication: the last row (ORDER BY the rowtime DESC, rownum = 1) per customer
-- and window.
INSERT INTO last_orders
SELECT window_end, customer, id FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, customer
                               ORDER BY ts DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND)))
WHERE rownum = 1;
