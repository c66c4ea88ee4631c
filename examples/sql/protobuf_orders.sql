-- Orders from a CSV file into a Kafka topic as protobuf messages (shop.Order of
-- examples/sql/orders.proto). The same table reads them back in another job (its scan
-- options bound the read at the offsets the job starts with). Run from the repository root
-- with a broker on localhost:9092:
--   fjord sql -f examples/sql/protobuf_orders.sql
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

CREATE TABLE order_messages (
  id       BIGINT,
  customer STRING,
  amount   DOUBLE,
  status   STRING
) WITH (
  'connector' = 'kafka',
  'topic'     = 'order-messages',
  'properties.bootstrap.servers' = 'localhost:9092',
  'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset',
  'format'    = 'protobuf',
  'protobuf.message-name' = 'shop.Order',
  'protobuf.proto-file'   = 'examples/sql/orders.proto'
);

INSERT INTO order_messages
SELECT CAST(id AS BIGINT), customer, amount,
       CASE WHEN qty >= 4 THEN 'BULK' WHEN qty IS NOT NULL THEN 'PAID' ELSE 'NEW' END
FROM orders;
