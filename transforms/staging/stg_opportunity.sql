-- stg_opportunity: one row per CRM opportunity created on or before the as-of date.
SELECT *,
    CASE WHEN created_at > getvariable('as_of') THEN 'created_at after as-of date' END AS _rule
FROM typed
