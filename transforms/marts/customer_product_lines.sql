-- customer_product_lines: one row per customer and product line it bought in the 12 months up
-- to the as-of date (the customer's "basket" for cross-sell rules).
SELECT DISTINCT customer_id, product_line
FROM sales_line
WHERE order_date > CAST(getvariable('as_of') - INTERVAL 12 MONTH AS DATE)
  AND product_line IS NOT NULL
ORDER BY customer_id, product_line
