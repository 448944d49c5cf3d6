-- customer_product_lines: one row per customer and product line it bought in the 12 months up
-- to the as-of date (the customer's "basket" for cross-sell rules).
SELECT DISTINCT o.customer_id, pr.product_line
FROM stg_order o
JOIN stg_order_line l USING (order_id)
JOIN stg_product pr USING (product_id)
WHERE NOT COALESCE(o.is_cancelled, FALSE)
  AND o.order_date > CAST(getvariable('as_of') - INTERVAL 12 MONTH AS DATE)
  AND pr.product_line IS NOT NULL
ORDER BY o.customer_id, pr.product_line
