-- customer_activity: one row per customer with what serving it took over the 12 months up to the
-- as-of date (cost-to-serve inputs, breadth of buying), how late it pays on its most recent
-- invoices (variable late_invoices of them, however old: a customer buying twice a year still has
-- a payment record), and its revenue and orders in the 12 months before those (the baseline the
-- declining alert compares against). Breadth comes from customer_product_line (made first by build).
WITH bounds AS (
    SELECT CAST(getvariable('as_of') - INTERVAL 12 MONTH AS DATE) AS start_12m,
           CAST(getvariable('as_of') - INTERVAL 24 MONTH AS DATE) AS start_24m
),
buying AS (  -- the 12 months before the last 12
    SELECT customer_id, sum(revenue) AS revenue_prior_12m, sum(orders) AS orders_prior_12m
    FROM customer_day, bounds b WHERE order_date > b.start_24m AND order_date <= b.start_12m GROUP BY customer_id
),
breadth AS (
    SELECT customer_id, count(*) AS product_lines_12m FROM customer_product_line GROUP BY customer_id
),
crm_customer AS (
    SELECT source_key AS account_id, customer_id FROM stg_customer_xref
    WHERE system = 'crm' AND customer_id IS NOT NULL
),
service AS (
    SELECT x.customer_id, count(*) AS service_cases_12m,
           count(*) FILTER (WHERE c.is_complaint) AS complaints_12m
    FROM stg_service_case c JOIN crm_customer x USING (account_id), bounds b
    WHERE CAST(c.opened_at AS DATE) > b.start_12m AND CAST(c.opened_at AS DATE) <= getvariable('as_of')
    GROUP BY x.customer_id
),
freight AS (  -- the join written in each place: the filters reach the scans (a shared CTE joined all)
    SELECT o.customer_id, sum(s.freight_cost) AS freight_12m
    FROM stg_shipment s JOIN stg_order o USING (order_id), bounds b
    WHERE o.order_date > b.start_12m AND o.order_date <= getvariable('as_of')
    GROUP BY o.customer_id
),
returned AS (
    SELECT o.customer_id, count(*) AS returns_12m, sum(r.credit_amount) AS return_credit_12m
    FROM stg_return r JOIN stg_shipment s USING (shipment_id) JOIN stg_order o USING (order_id), bounds b
    WHERE r.return_date > b.start_12m AND r.return_date <= getvariable('as_of')
    GROUP BY o.customer_id
),
capital AS (
    -- capital tied up: each invoice's amount for the days until paid (or until the as-of date)
    SELECT customer_id,
           sum(amount * date_diff('day', invoice_date, COALESCE(paid_on, getvariable('as_of'))))
               AS receivable_amount_days_12m
    FROM invoice_payment, bounds b WHERE invoice_date > b.start_12m
    GROUP BY customer_id
),
recent_due AS (
    SELECT customer_id, amount,
           greatest(0, date_diff('day', due_date, COALESCE(paid_on, getvariable('as_of')))) AS days_late,
           row_number() OVER (PARTITION BY customer_id ORDER BY due_date DESC, invoice_id DESC) AS k
    FROM invoice_payment WHERE due_date <= getvariable('as_of')
),
lateness AS (
    -- days past due when paid, or so far if still open; the median, so one invoice that never
    -- got paid (a dispute, a lost payment record) does not make a punctual customer a late payer
    SELECT customer_id, median(days_late) AS median_days_late
    FROM recent_due WHERE k <= getvariable('late_invoices')
    GROUP BY customer_id
)
SELECT
    c.customer_id,
    CAST(COALESCE(buying.revenue_prior_12m, 0) AS DOUBLE) AS revenue_prior_12m,
    CAST(COALESCE(buying.orders_prior_12m, 0) AS BIGINT) AS orders_prior_12m,
    CAST(COALESCE(breadth.product_lines_12m, 0) AS BIGINT) AS product_lines_12m,
    CAST(COALESCE(service.service_cases_12m, 0) AS BIGINT) AS service_cases_12m,
    CAST(COALESCE(service.complaints_12m, 0) AS BIGINT) AS complaints_12m,
    CAST(COALESCE(returned.returns_12m, 0) AS BIGINT) AS returns_12m,
    CAST(COALESCE(returned.return_credit_12m, 0) AS DOUBLE) AS return_credit_12m,
    CAST(COALESCE(freight.freight_12m, 0) AS DOUBLE) AS freight_12m,
    CAST(COALESCE(capital.receivable_amount_days_12m, 0) AS DOUBLE) AS receivable_amount_days_12m,
    CAST(lateness.median_days_late AS DOUBLE) AS median_days_late
FROM stg_customer c
LEFT JOIN buying USING (customer_id)
LEFT JOIN breadth USING (customer_id)
LEFT JOIN service USING (customer_id)
LEFT JOIN freight USING (customer_id)
LEFT JOIN returned USING (customer_id)
LEFT JOIN capital USING (customer_id)
LEFT JOIN lateness USING (customer_id)
