-- stg_service_case: one row per CRM service case opened on or before the as-of date.
SELECT *,
    CASE
        WHEN CAST(opened_at AS DATE) > getvariable('as_of') THEN 'opened_at after as-of date'
        WHEN satisfaction NOT BETWEEN 1 AND 5 THEN 'satisfaction outside 1..5'
    END AS _rule
FROM typed
