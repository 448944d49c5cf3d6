-- stg_return: one row per returned item, on or before the as-of date.
SELECT *,
    CASE
        WHEN return_date > getvariable('as_of') THEN 'return_date after as-of date'
        WHEN quantity <= 0 THEN 'quantity not positive'
    END AS _rule
FROM typed
