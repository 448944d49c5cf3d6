-- stg_customer: one row per customer of the system of record (ERP customer master).
-- Rule: a customer created after the as-of date did not exist yet on that date.
SELECT *,
    CASE WHEN created_at > getvariable('as_of') THEN 'created_at after as-of date' END AS _rule
FROM typed
