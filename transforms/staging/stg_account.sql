-- stg_account: one row per CRM account.
SELECT *,
    CASE WHEN created_at > getvariable('as_of') THEN 'created_at after as-of date' END AS _rule
FROM typed
