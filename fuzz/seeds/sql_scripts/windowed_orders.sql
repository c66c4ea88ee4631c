-- Orders per customer in 10-second event-time windows, printed as Flink's print connector
-- does. Run from the repository root:
--   fjord sql -f examples/sql/windowed_orders.sql
--   fjord sql --explain -f examples/sql/windowed_orders.sql
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
  -- Empty fields are NULL (without this, Flink's CSV format and Fjord's refuse them).
  'csv.null-literal' = ''
);

-- Orders with a known size; CASE and COALESCE follow SQL's NULL rules.
CREATE VIEW sized AS
SELECT id, COALESCE(customer, 'nobody') AS customer, amount, qty, ts,
       CASE WHEN amount >= 10 THEN 'big' ELSE 'small' END AS size
FROM orders
WHERE amount IS NOT NULL;

CREATE TABLE per_customer (
  window_start TIMESTAMP(3),
  window_end   TIMESTAMP(3),
  customer     STRING,
  orders       BIGINT,
  total        DOUBLE,
  big_orders   BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'orders');

INSERT INTO per_customer
SELECT window_start, window_end, customer, COUNT(*), SUM(amount),
       COUNT(CASE WHEN size = 'big' THEN 1 END)
FROM TABLE(TUMBLE(TABLE sized, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, customer;
