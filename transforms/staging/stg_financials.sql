-- stg_financials: one row per customer and fiscal period, as reported by the as-of date.
SELECT *,
    CASE WHEN reported_at > getvariable('as_of') THEN 'reported_at after as-of date' END AS _rule
FROM typed
