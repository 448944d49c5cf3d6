-- stg_order: one row per sales order placed on or before the as-of date.
SELECT *,
    CASE
        WHEN order_date > getvariable('as_of') THEN 'order_date after as-of date'
        WHEN order_date < DATE '1990-01-01' THEN 'order_date before 1990'
    END AS _rule
FROM typed
