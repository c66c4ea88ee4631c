-- Updating results: each customer's totals, which change as orders arrive (a GROUP BY
-- without windows), and each order with its customer's city (a LEFT JOIN), printed with their
-- change kinds as Flink's print connector does (+I insert, -U/+U update, -D delete).
-- Run from the repository root:
--   fjord sql -f examples/sql/changelog_orders.sql
--   fjord sql --explain -f examples/sql/changelog_orders.sql
SET 'parallelism.default' = '1';

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

CREATE TABLE customers (name STRING, city STRING) WITH (
  'connector' = 'filesystem',
  'path'      = 'examples/sql/customers.csv',
  'format'    = 'csv'
);

-- A file or Kafka sink would refuse these queries: their results are updated.
CREATE TABLE totals (customer STRING, orders BIGINT, amount DOUBLE)
  WITH ('connector' = 'print', 'print-identifier' = 'totals');

CREATE TABLE located (id INT, customer STRING, city STRING)
  WITH ('connector' = 'print', 'print-identifier' = 'located');

INSERT INTO totals
SELECT customer, COUNT(*), SUM(amount) FROM orders GROUP BY customer;

INSERT INTO located
SELECT o.id, o.customer, c.city
FROM orders AS o LEFT JOIN customers AS c ON o.customer = c.name;
