-- credit_indicators: one row per customer with the scorecard's 20 indicators, measured on the
-- quarter before the rating quarter (variables period_start .. period_end) and on what was known
-- by its end: payments after period_end do not count, financial statements must have been reported
-- by then. Any as-of date inside the rating quarter therefore gives the same figures.
WITH p AS (
    SELECT getvariable('period_start') AS s, getvariable('period_end') AS e,
           CAST(getvariable('period_end') - INTERVAL 12 MONTH AS DATE) AS s12,
           CAST(getvariable('period_start') - INTERVAL 12 MONTH AS DATE) AS ly_s,
           CAST(getvariable('period_end') - INTERVAL 12 MONTH AS DATE) AS ly_e
),
line AS (SELECT * FROM sales_line),
buying AS (
    SELECT customer_id,
           min(order_date) AS first_order,
           sum(revenue) FILTER (WHERE order_date BETWEEN p.s AND p.e) AS revenue_q,
           sum(revenue) FILTER (WHERE order_date BETWEEN p.ly_s AND p.ly_e) AS revenue_ly,
           count(DISTINCT order_id) FILTER (WHERE order_date BETWEEN p.s AND p.e) AS orders,
           count(DISTINCT date_trunc('month', order_date)) FILTER (WHERE order_date > p.s12 AND order_date <= p.e)
               AS active_months,
           count(DISTINCT product_line) FILTER (WHERE order_date > p.s12 AND order_date <= p.e) AS product_lines
    FROM line, p WHERE order_date <= p.e GROUP BY customer_id
),
crm_customer AS (
    SELECT source_key AS account_id, customer_id FROM stg_customer_xref
    WHERE system = 'crm' AND customer_id IS NOT NULL
),
service AS (
    SELECT x.customer_id,
           count(*) FILTER (WHERE c.is_complaint AND CAST(c.opened_at AS DATE) BETWEEN p.s AND p.e) AS complaints,
           avg(c.satisfaction) FILTER (WHERE CAST(c.closed_at AS DATE) > p.s12 AND CAST(c.closed_at AS DATE) <= p.e)
               AS satisfaction
    FROM stg_service_case c JOIN crm_customer x USING (account_id), p
    GROUP BY x.customer_id
),
returned AS (
    SELECT o.customer_id, sum(r.credit_amount) AS return_credit
    FROM stg_return r JOIN stg_shipment s USING (shipment_id) JOIN stg_order o USING (order_id), p
    WHERE r.return_date BETWEEN p.s AND p.e
    GROUP BY o.customer_id
),
paid AS (
    SELECT invoice_id, payment_date, amount,
           sum(amount) OVER (PARTITION BY invoice_id ORDER BY payment_date, payment_id) AS running
    FROM stg_payment, p WHERE payment_date <= p.e
),
settled AS (
    SELECT x.invoice_id, sum(x.amount) AS paid_amount,
           min(x.payment_date) FILTER (WHERE x.running >= i.amount - 0.005) AS paid_on
    FROM paid x JOIN stg_invoice i USING (invoice_id)
    GROUP BY x.invoice_id
),
invoice AS (
    SELECT i.invoice_id, i.customer_id, i.invoice_date, i.due_date, i.amount,
           st.paid_on, COALESCE(st.paid_amount, 0) AS paid_amount
    FROM stg_invoice i LEFT JOIN settled st USING (invoice_id), p
    WHERE i.invoice_date <= p.e AND i.amount > 0
),
payment AS (
    SELECT customer_id,
           avg(CASE WHEN paid_on IS NOT NULL AND paid_on <= due_date THEN 1.0 ELSE 0.0 END)
               FILTER (WHERE due_date BETWEEN p.s AND p.e) AS on_time_share,
           avg(greatest(0, date_diff('day', due_date, COALESCE(paid_on, p.e))))
               FILTER (WHERE due_date BETWEEN p.s AND p.e) AS mean_days_late,
           max(greatest(0, date_diff('day', due_date, COALESCE(paid_on, p.e))))
               FILTER (WHERE due_date BETWEEN p.s AND p.e) AS max_days_late,
           sum(greatest(amount - paid_amount, 0)) FILTER (WHERE due_date < p.e) AS overdue,
           sum(amount) FILTER (WHERE invoice_date > p.s12) AS invoiced_12m,
           sum(greatest(amount - paid_amount, 0)) AS open_amount
    FROM invoice, p GROUP BY customer_id
),
statement AS (
    SELECT f.*, row_number() OVER (PARTITION BY customer_id ORDER BY period DESC, reported_at DESC) AS recent
    FROM stg_financials f, p WHERE f.reported_at <= p.e
),
financial AS (
    SELECT cur.customer_id, cur.current_assets, cur.current_liabilities, cur.total_assets,
           cur.total_liabilities, cur.net_income, cur.revenue, prev.revenue AS previous_revenue
    FROM statement cur LEFT JOIN statement prev ON prev.customer_id = cur.customer_id AND prev.recent = 2
    WHERE cur.recent = 1
)
SELECT
    c.customer_id,
    date_diff('day', least(b.first_order, c.created_at), p.e) / 365.25 AS relationship_years,
    CAST(COALESCE(s.complaints, 0) AS DOUBLE) AS complaints,
    CASE WHEN COALESCE(b.revenue_q, 0) > 0 THEN COALESCE(r.return_credit, 0) / b.revenue_q
         WHEN r.return_credit > 0 THEN 1.0 ELSE 0.0 END AS return_rate,
    CAST(COALESCE(b.active_months, 0) AS DOUBLE) AS active_months,
    CAST(s.satisfaction AS DOUBLE) AS satisfaction,
    pay.on_time_share,
    CAST(pay.mean_days_late AS DOUBLE) AS mean_days_late,
    CAST(pay.max_days_late AS DOUBLE) AS max_days_late,
    CASE WHEN COALESCE(pay.invoiced_12m, 0) > 0 THEN COALESCE(pay.overdue, 0) / pay.invoiced_12m
         ELSE 0.0 END AS overdue_share,
    CASE WHEN c.credit_limit > 0 THEN COALESCE(pay.open_amount, 0) / CAST(c.credit_limit AS DOUBLE) END
        AS credit_utilisation,
    percent_rank() OVER (ORDER BY COALESCE(b.revenue_q, 0)) * (COALESCE(b.revenue_q, 0) > 0)::INT
        AS revenue_percentile,
    CASE WHEN b.revenue_ly > 0 THEN COALESCE(b.revenue_q, 0) / b.revenue_ly END AS revenue_trend,
    CAST(COALESCE(b.orders, 0) AS DOUBLE) AS orders,
    CAST(COALESCE(b.product_lines, 0) AS DOUBLE) AS product_lines,
    CAST(f.current_assets / nullif(f.current_liabilities, 0) AS DOUBLE) AS current_ratio,
    CAST(f.total_liabilities / nullif(f.total_assets, 0) AS DOUBLE) AS debt_ratio,
    CAST((f.total_assets - f.total_liabilities) / nullif(c.credit_limit, 0) AS DOUBLE) AS net_worth_cover,
    CAST(f.net_income / nullif(f.revenue, 0) AS DOUBLE) AS net_margin,
    CAST(f.net_income / nullif(f.total_assets, 0) AS DOUBLE) AS return_on_assets,
    CAST(f.revenue / nullif(f.previous_revenue, 0) AS DOUBLE) AS revenue_growth
FROM stg_customer c
CROSS JOIN p
LEFT JOIN buying b USING (customer_id)
LEFT JOIN service s USING (customer_id)
LEFT JOIN returned r USING (customer_id)
LEFT JOIN payment pay USING (customer_id)
LEFT JOIN financial f USING (customer_id)
WHERE least(b.first_order, c.created_at) <= p.e
