-- The orders as Avro container files, committed exactly once with every checkpoint by the
-- filesystem connector's 'avro' format (Flink's: Flink's filesystem connector reads these
-- files, and Fjord reads Flink's). Run from the repository root:
--   fjord sql -f examples/sql/avro_orders.sql
-- then read them back (or point Flink SQL's filesystem connector at the directory):
--   CREATE TABLE orders_avro (...) WITH ('connector' = 'filesystem',
--     'path' = '/tmp/fjord-avro/orders', 'format' = 'avro');
SET 'parallelism.default' = '2';

CREATE TABLE orders (
  id       INT,
  customer STRING,
  amount   DOUBLE,
  qty      INT,
  ts       TIMESTAMP(3)
) WITH (
  'connector' = 'filesystem',
  'path'      = 'examples/sql/orders.csv',
  'format'    = 'csv',
  'csv.null-literal' = ''
);

CREATE TABLE orders_avro (
  id         INT,
  customer   STRING,
  amount     DECIMAL(10, 2),
  qty        INT,
  ts         TIMESTAMP(3),
  order_date DATE
) WITH (
  'connector'  = 'filesystem',
  'path'       = 'file:///tmp/fjord-avro/orders',
  'format'     = 'avro',
  'avro.codec' = 'deflate',
  'sink.rolling-policy.file-size'           = '64MB',
  'sink.rolling-policy.inactivity-interval' = '30s',
  'sink.rolling-policy.check-interval'      = '10s'
);

INSERT INTO orders_avro
SELECT id, customer, CAST(amount AS DECIMAL(10, 2)), qty, ts, CAST(ts AS DATE) FROM orders;
