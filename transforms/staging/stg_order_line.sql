-- stg_order_line: one row per sales order line with a positive quantity and a sane price.
SELECT *,
    CASE
        WHEN quantity <= 0 THEN 'quantity not positive'
        WHEN unit_price < 0 THEN 'unit_price negative'
        WHEN discount < 0 OR discount > 1 THEN 'discount outside [0, 1]'
    END AS _rule
FROM typed
