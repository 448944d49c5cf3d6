-- product_line_bit: each product line of the staged products and its bit in customer_day's
-- product_line_mask (the lines in name order, bit 0 first). A 64-bit mask holds 63 lines (bit 63
-- is the sign); with more, no line gets a bit, every mask is NULL and customer_product_line is
-- read from the order lines (pipelines/customer_day.py). The bits are those of the staged products
-- the customer-days were summed with: a change of products sums every customer-day again.
WITH lines AS (
    SELECT product_line, CAST(row_number() OVER (ORDER BY product_line) - 1 AS BIGINT) AS bit
    FROM (SELECT DISTINCT product_line FROM stg_product WHERE product_line IS NOT NULL)
)
SELECT product_line, bit, CAST(1 AS BIGINT) << bit AS mask
FROM lines
WHERE (SELECT count(*) FROM lines) <= 63
