-- clv_transactions: one row per customer and day it bought (same-day orders merged), with the
-- day's revenue and gross margin, every day up to the as-of date: what the CLV models fit on.
SELECT
    customer_id,
    order_date AS date,
    -- summed as exact decimals (a float sum varies in its last bit with row order), then DOUBLE
    CAST(sum(revenue) AS DOUBLE) AS amount,
    CAST(sum(revenue - cost) AS DOUBLE) AS margin
FROM sales_line
WHERE order_date <= getvariable('as_of')
GROUP BY customer_id, order_date
ORDER BY customer_id, order_date
