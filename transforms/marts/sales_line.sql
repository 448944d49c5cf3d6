-- sales_line: every line of a non-cancelled order, with the order's customer and date, the
-- product line, and the line's revenue and cost as exact decimals (a float sum varies in its last
-- bit with row order). Joined once per step: every mart that reads order history reads this.
SELECT
    o.customer_id,
    o.order_id,
    o.order_date,
    p.product_line,
    CAST(ROUND(l.quantity * l.unit_price * (1 - COALESCE(l.discount, 0)), 2) AS DECIMAL(18, 2)) AS revenue,
    CAST(ROUND(l.quantity * p.unit_cost, 2) AS DECIMAL(18, 2)) AS cost
FROM stg_order o
JOIN stg_order_line l USING (order_id)
LEFT JOIN stg_product p USING (product_id)
WHERE NOT COALESCE(o.is_cancelled, FALSE)
