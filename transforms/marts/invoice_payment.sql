-- invoice_payment: one row per invoice (amount > 0) with the day its staged payments first
-- covered it (NULL while they do not). Several partial payments count as paid on the day their
-- running total, in date order, reaches the invoice amount. The day does not depend on the as-of
-- date: a night reads it through pipelines/invoice_payment.py, which keeps the invoices dated up
-- to the as-of date and a paid day only when it is not after it (the running total over the
-- payments known then reaches the amount on that same day, or not at all). Reads the views
-- `paid_invoices` and `paid_payments` (every staged invoice and payment, or some invoices and
-- all their payments). Most invoices have one payment: the running total is taken only over the
-- invoices with several (a window over every payment was most of this table's cost), and one
-- join takes each invoice's payments (tests/test_invoice_payment.py states the rule).
WITH per_invoice AS MATERIALIZED (
    SELECT invoice_id, count(*) AS payments, sum(amount) AS paid, min(payment_date) AS first_paid
    FROM paid_payments
    WHERE payment_date IS NOT NULL
    GROUP BY invoice_id
),
several AS (
    SELECT p.invoice_id, p.payment_date,
           sum(p.amount) OVER (PARTITION BY p.invoice_id ORDER BY p.payment_date, p.payment_id) AS running
    FROM paid_payments p
    WHERE p.payment_date IS NOT NULL
      AND p.invoice_id IN (SELECT invoice_id FROM per_invoice WHERE payments > 1)
),
covered_later AS (
    SELECT p.invoice_id, min(p.payment_date) AS paid_on
    FROM several p JOIN paid_invoices i USING (invoice_id)
    WHERE p.running >= i.amount - 0.005
    GROUP BY p.invoice_id
)
SELECT i.invoice_id, i.customer_id, i.invoice_date, i.due_date, i.amount,
       CASE WHEN s.payments = 1 THEN CASE WHEN s.paid >= i.amount - 0.005 THEN s.first_paid END
            ELSE l.paid_on END AS paid_on
FROM paid_invoices i
LEFT JOIN per_invoice s USING (invoice_id)
LEFT JOIN covered_later l USING (invoice_id)
WHERE i.amount > 0
