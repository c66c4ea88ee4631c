-- -------------------------------------------------------------------------------------------------
-- Query 5: Hot Items, as a window Top-N
-- -------------------------------------------------------------------------------------------------
-- Which auction has seen the most bids in the last period (10 seconds, every 2 seconds)?
--
-- The Flink benchmark's q5 (bench/nexmark/flink/q5.sql) joins the per-auction counts with their
-- maximum per window and keeps every auction at the maximum. This is the same question as a
-- window Top-N, the form Flink and Fjord both plan without a regular join: the auction with the
-- most bids in each window, ties broken by the larger auction id so that both engines agree.
-- -------------------------------------------------------------------------------------------------

CREATE TABLE nexmark_q5 (
  auction  BIGINT,
  num  BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q5
SELECT auction, num FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                               ORDER BY num DESC, auction DESC) AS rownum
  FROM (
    SELECT auction, count(*) AS num, window_start, window_end
    FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
    GROUP BY auction, window_start, window_end))
WHERE rownum <= 1;
