-- The custom worker's user-defined functions in SQL (src/main.rs registers them). Run from
-- the repository root:
--   cargo run -p my-fjord-worker -- sql -f examples/custom-worker/sql/readings.sql
SET 'parallelism.default' = '1';

CREATE TABLE readings (
  sensor  STRING,
  celsius DOUBLE,
  tags    STRING,
  ts      TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path'      = 'examples/custom-worker/sql/readings.csv',
  'format'    = 'csv',
  'csv.null-literal' = ''
);

-- A registered function under another name, as Flink's CREATE FUNCTION reads.
CREATE TEMPORARY FUNCTION to_f AS 'fahrenheit';

CREATE TABLE per_sensor (
  window_start TIMESTAMP(3),
  sensor       STRING,
  max_f        DOUBLE,
  spread_c     DOUBLE
) WITH ('connector' = 'print', 'print-identifier' = 'windows');

-- A scalar function over an aggregate, and a user-defined aggregate, per 10-second window.
INSERT INTO per_sensor
SELECT window_start, sensor, fahrenheit(MAX(celsius)), spread(celsius)
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, sensor;

CREATE TABLE tagged (
  sensor    STRING,
  tag       STRING,
  temp_f    DOUBLE
) WITH ('connector' = 'print', 'print-identifier' = 'tags');

-- A table function: one row per tag; readings without tags are kept with a NULL tag.
INSERT INTO tagged
SELECT sensor, tag, to_f(celsius)
FROM readings LEFT JOIN LATERAL TABLE(split_tags(tags)) AS T(tag) ON TRUE;
