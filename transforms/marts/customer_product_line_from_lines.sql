-- customer_product_line: one row per customer and product line it bought in the 12 months up to
-- the as-of date: the customer's "basket" for cross-sell rules and its buying breadth. Written by
-- build, so mining reads 2-3 rows per customer instead of joining the order history again.
-- The definition, read from the order lines: build reads customer_product_line.sql (the same rows
-- from customer_day's product-line masks) unless the products have more lines than a mask holds.
SELECT DISTINCT customer_id, product_line
FROM sales_line
WHERE order_date > CAST(getvariable('as_of') - INTERVAL 12 MONTH AS DATE)
  AND order_date <= getvariable('as_of')
  AND product_line IS NOT NULL
ORDER BY customer_id, product_line
