-- invoice_payment: one row per invoice with the day it was fully paid (payments up to the as-of
-- date; NULL while still open). Several partial payments count as paid on the day their running
-- total reaches the invoice amount.
WITH paid AS (
    SELECT invoice_id, payment_date,
           sum(amount) OVER (PARTITION BY invoice_id ORDER BY payment_date, payment_id) AS running
    FROM stg_payment
    WHERE payment_date <= getvariable('as_of')
),
covered AS (
    SELECT p.invoice_id, min(p.payment_date) AS paid_on
    FROM paid p JOIN stg_invoice i USING (invoice_id)
    WHERE p.running >= i.amount - 0.005
    GROUP BY p.invoice_id
)
SELECT i.invoice_id, i.customer_id, i.invoice_date, i.due_date, i.amount, c.paid_on
FROM stg_invoice i
LEFT JOIN covered c USING (invoice_id)
WHERE i.invoice_date <= getvariable('as_of') AND i.amount > 0
