-- stg_shipment: one row per shipment shipped on or before the as-of date (or still planned).
SELECT *,
    CASE
        WHEN shipped_date > getvariable('as_of') THEN 'shipped_date after as-of date'
        WHEN delivered_date < shipped_date THEN 'delivered before shipped'
        WHEN freight_cost < 0 THEN 'freight_cost negative'
    END AS _rule
FROM typed
