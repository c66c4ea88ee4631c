-- -------------------------------------------------------------------------------------------------
-- Query 7: Highest Bid, as a window Top-N
-- -------------------------------------------------------------------------------------------------
-- What is the highest bid in each period (10 seconds)?
--
-- The Flink benchmark's q7 (bench/nexmark/flink/q7.sql) joins the bids with the maximum price of
-- each window and keeps every bid at the maximum. This is the same question as a window Top-N,
-- the form Flink and Fjord both plan without a regular join: the highest bid of each window, ties
-- broken by the later bid, then the larger auction and bidder ids so that both engines agree.
-- -------------------------------------------------------------------------------------------------

CREATE TABLE nexmark_q7 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  `dateTime`  TIMESTAMP(3),
  extra  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q7
SELECT auction, bidder, price, `dateTime`, extra FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                               ORDER BY price DESC, `dateTime` DESC, auction DESC,
                                        bidder DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND)))
WHERE rownum <= 1;
