-- sales_line: every line of a non-cancelled order, with the order's customer and date, the
-- product line, and the line's revenue and cost (order_line_value). A view: what measures buying
-- over a window reads customer_day; the product-line baskets and the quarterly credit rating read this.
SELECT o.customer_id, o.order_id, o.order_date, v.product_line, v.revenue, v.cost
FROM stg_order o
JOIN order_line_value v USING (order_id)
WHERE NOT COALESCE(o.is_cancelled, FALSE)
