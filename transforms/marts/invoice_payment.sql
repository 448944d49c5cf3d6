-- invoice_payment: one row per invoice with the day it was fully paid (payments up to the as-of
-- date; NULL while still open). Several partial payments count as paid on the day their running
-- total reaches the invoice amount. Most invoices have one payment: the running total is taken
-- only over the invoices with several (a window over every payment was most of this table's cost),
-- and one join takes each invoice's payments (tests/test_invoice_payment.py states the rule).
WITH per_invoice AS MATERIALIZED (
    SELECT invoice_id, count(*) AS payments, sum(amount) AS paid, min(payment_date) AS first_paid
    FROM stg_payment
    WHERE payment_date <= getvariable('as_of')
    GROUP BY invoice_id
),
several AS (
    SELECT p.invoice_id, p.payment_date,
           sum(p.amount) OVER (PARTITION BY p.invoice_id ORDER BY p.payment_date, p.payment_id) AS running
    FROM stg_payment p
    WHERE p.payment_date <= getvariable('as_of')
      AND p.invoice_id IN (SELECT invoice_id FROM per_invoice WHERE payments > 1)
),
covered_later AS (
    SELECT p.invoice_id, min(p.payment_date) AS paid_on
    FROM several p JOIN stg_invoice i USING (invoice_id)
    WHERE p.running >= i.amount - 0.005
    GROUP BY p.invoice_id
)
SELECT i.invoice_id, i.customer_id, i.invoice_date, i.due_date, i.amount,
       CASE WHEN s.payments = 1 THEN CASE WHEN s.paid >= i.amount - 0.005 THEN s.first_paid END
            ELSE l.paid_on END AS paid_on
FROM stg_invoice i
LEFT JOIN per_invoice s USING (invoice_id)
LEFT JOIN covered_later l USING (invoice_id)
WHERE i.invoice_date <= getvariable('as_of') AND i.amount > 0
