-- clv_summary: one row per customer who bought up to the variable summary_end, in the terms the
-- BG/NBD and Gamma-Gamma models fit on (models/clv/summary.py has the same summary in pandas,
-- the reference it is tested against): frequency = purchase days after the first, recency and T
-- = weeks from the first purchase day to the last one and to summary_end, monetary = mean spend
-- of the repeat purchase days. Also the first day's spend, the margin share over the days whose
-- margin is known, and later_purchases: purchase days after summary_end up to the as-of date
-- (what the holdout check compares its predictions with). Reads clv_transactions; money is summed
-- as exact decimals, so the figures do not depend on row order.
WITH p AS (SELECT getvariable('summary_end') AS e),
days AS (
    SELECT customer_id, date, CAST(amount AS DECIMAL(18, 2)) AS amount, CAST(margin AS DECIMAL(18, 2)) AS margin
    FROM clv_transactions, p WHERE date <= p.e
),
later AS (
    SELECT customer_id, count(*) AS later_purchases
    FROM clv_transactions, p WHERE date > p.e GROUP BY customer_id
),
per AS (
    SELECT customer_id, count(*) - 1 AS frequency, min(date) AS first_purchase, max(date) AS last_purchase,
           arg_min(amount, date) AS first_amount, sum(amount) AS spend,
           sum(margin) AS known_margin, sum(amount) FILTER (WHERE margin IS NOT NULL) AS known_amount
    FROM days GROUP BY customer_id
)
SELECT
    per.customer_id,
    CAST(frequency AS BIGINT) AS frequency,
    date_diff('day', first_purchase, last_purchase) / 7.0 AS recency,
    date_diff('day', first_purchase, p.e) / 7.0 AS "T",
    CASE WHEN frequency > 0 THEN CAST(spend - first_amount AS DOUBLE) / frequency ELSE 0.0 END AS monetary,
    first_purchase,
    last_purchase,
    CAST(first_amount AS DOUBLE) AS first_amount,
    CASE WHEN known_amount > 0 THEN CAST(known_margin AS DOUBLE) / CAST(known_amount AS DOUBLE) END AS margin_share,
    CAST(COALESCE(later.later_purchases, 0) AS BIGINT) AS later_purchases
FROM per CROSS JOIN p LEFT JOIN later USING (customer_id)
ORDER BY per.customer_id
