-- customer_day: one row per customer and day it ordered (non-cancelled orders with at least one
-- line): revenue, cost and margin (revenue less cost over the lines whose cost is known) as exact
-- decimals, lines, lines with a known cost, orders, and the product lines bought that day as the
-- OR of their bits (`product_line_bit`; NULL when none has a bit): customer_product_line reads the
-- 12 months' masks instead of the 30M order lines. The same sums as over sales_line, but the
-- lines are summed per order before they meet the orders (30M lines become 8M orders at 1M
-- customers, and no count of distinct orders is needed): customer_value, customer_activity and
-- clv_transactions read this.
-- Reads `day_orders` (stg_order, or the orders of the customer-days to sum again) and `day_lines`
-- (order_line_value, or those orders' lines): pipelines/customer_day.py keeps the result as
-- fct_customer_day and sums again only the customer-days whose orders or lines staging re-checked.
WITH per_order AS (
    SELECT order_id, sum(revenue) AS revenue, sum(cost) AS cost, sum(revenue - cost) AS margin,
           count(*) AS lines, count(cost) AS costed_lines, bit_or(b.mask) AS product_line_mask
    FROM day_lines LEFT JOIN product_line_bit b USING (product_line)
    GROUP BY order_id
)
SELECT
    o.customer_id,
    o.order_date,
    CAST(sum(l.revenue) AS DECIMAL(18, 2)) AS revenue,
    CAST(sum(l.cost) AS DECIMAL(18, 2)) AS cost,
    CAST(sum(l.margin) AS DECIMAL(18, 2)) AS margin,
    CAST(sum(l.lines) AS BIGINT) AS lines,
    CAST(sum(l.costed_lines) AS BIGINT) AS costed_lines,
    count(*) AS orders,
    bit_or(l.product_line_mask) AS product_line_mask
FROM day_orders o
JOIN per_order l USING (order_id)
WHERE NOT COALESCE(o.is_cancelled, FALSE)
GROUP BY o.customer_id, o.order_date
