-- order_line_value: every order line with its product line, and its revenue and cost as exact
-- decimals (a float sum varies in its last bit with row order). sales_line and customer_day read it.
SELECT
    l.order_id,
    p.product_line,
    CAST(ROUND(l.quantity * l.unit_price * (1 - COALESCE(l.discount, 0)), 2) AS DECIMAL(18, 2)) AS revenue,
    CAST(ROUND(l.quantity * p.unit_cost, 2) AS DECIMAL(18, 2)) AS cost
FROM stg_order_line l
LEFT JOIN stg_product p USING (product_id)
