-- stg_payment: one row per payment received on or before the as-of date.
SELECT *,
    CASE WHEN payment_date > getvariable('as_of') THEN 'payment_date after as-of date' END AS _rule
FROM typed
