-- stg_invoice: one row per invoice issued on or before the as-of date.
SELECT *,
    CASE
        WHEN invoice_date > getvariable('as_of') THEN 'invoice_date after as-of date'
        WHEN due_date < invoice_date THEN 'due_date before invoice_date'
    END AS _rule
FROM typed
