-- Web and store orders merged with UNION ALL, then counted per 10-second window: the
-- union's columns take the branches' common types (qty INT with BIGINT is BIGINT, amount
-- DOUBLE with DECIMAL(10, 2) is DOUBLE), ts stays the rowtime because both branches have it
-- there, and the union's watermark is the minimum of the two sources'.
-- Run from the repository root:
--   fjord sql -f examples/sql/union_orders.sql
--   fjord sql --explain -f examples/sql/union_orders.sql
SET 'parallelism.default' = '2';

CREATE TABLE web_orders (
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

CREATE TABLE store_orders (
  id       BIGINT,
  customer STRING,
  amount   DECIMAL(10, 2),
  qty      BIGINT,
  ts       TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path'      = 'examples/sql/store_orders.csv',
  'format'    = 'csv',
  'csv.null-literal' = ''
);

CREATE VIEW all_orders AS
  SELECT id, customer, amount, qty, 'web' AS channel, ts FROM web_orders
  UNION ALL
  SELECT id, customer, amount, qty, 'store' AS channel, ts FROM store_orders;

CREATE TABLE orders_per_window (
  window_end TIMESTAMP(3),
  channel    STRING,
  orders     BIGINT,
  items      BIGINT,
  revenue    DOUBLE
) WITH ('connector' = 'print', 'print-identifier' = 'union');

INSERT INTO orders_per_window
SELECT window_end, channel, COUNT(*), SUM(qty), SUM(amount)
FROM TABLE(TUMBLE(TABLE all_orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, channel;
