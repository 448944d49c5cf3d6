-- clv_transactions: one row per customer and day it bought (same-day orders merged), with the
-- day's revenue and gross margin, every day up to the as-of date: what the CLV models fit on.
SELECT
    o.customer_id,
    o.order_date AS date,
    -- summed as exact decimals (a float sum varies in its last bit with row order), then DOUBLE
    CAST(sum(CAST(ROUND(l.quantity * l.unit_price * (1 - COALESCE(l.discount, 0)), 2) AS DECIMAL(18, 2)))
        AS DOUBLE) AS amount,
    CAST(sum(CAST(ROUND(l.quantity * l.unit_price * (1 - COALESCE(l.discount, 0)), 2) AS DECIMAL(18, 2))
             - CAST(ROUND(l.quantity * p.unit_cost, 2) AS DECIMAL(18, 2))) AS DOUBLE) AS margin
FROM stg_order o
JOIN stg_order_line l USING (order_id)
LEFT JOIN stg_product p USING (product_id)
WHERE NOT COALESCE(o.is_cancelled, FALSE) AND o.order_date <= getvariable('as_of')
GROUP BY o.customer_id, o.order_date
ORDER BY o.customer_id, o.order_date
