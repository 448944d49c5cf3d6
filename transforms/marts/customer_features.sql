-- customer_features: one row per customer (ERP customer master) with the behaviour the mining
-- step segments and explains, in business units, over the 12 months up to the as-of date.
-- Gaps are filled with what they mean (no payment: nothing late; no delivery: nothing late;
-- never ordered: recency = days since the customer was created), so every row is usable.
-- Skew is handled in Python (models/segments.py: log compression before scaling). What build already
-- measured (12-month revenue and orders, the 12 months before, product-line breadth, service cases,
-- complaints and returns) is read from customer_value: mining does not join those tables again,
-- and a customer's complaints are the same count in its segment as in its cost-to-serve.
WITH p AS (
    SELECT getvariable('as_of') AS as_of,
           CAST(getvariable('as_of') - INTERVAL 12 MONTH AS DATE) AS since
),
account AS (
    SELECT x.customer_id, a.account_id, a.region, a.size_band
    FROM stg_customer_xref x JOIN stg_account a ON a.account_id = x.source_key
    WHERE x.system = 'crm' AND x.customer_id IS NOT NULL
),
crm AS (
    SELECT customer_id, min(region) AS region, min(size_band) AS size_band FROM account GROUP BY customer_id
),
delay AS (
    SELECT y.customer_id, avg(date_diff('day', i.due_date, y.payment_date)) AS payment_delay_days
    FROM stg_payment y JOIN stg_invoice i USING (invoice_id), p
    WHERE y.payment_date > since AND i.due_date IS NOT NULL
    GROUP BY y.customer_id
),
delivery AS (
    SELECT o.customer_id,
           avg(CASE WHEN s.delivered_date <= s.promised_date THEN 1.0 ELSE 0.0 END) AS on_time_rate
    FROM stg_shipment s JOIN stg_order o USING (order_id), p
    WHERE s.delivered_date > since AND s.delivered_date <= as_of AND s.promised_date IS NOT NULL
    GROUP BY o.customer_id
)
SELECT
    c.customer_id,
    COALESCE(c.industry, 'unknown') AS industry,
    COALESCE(crm.region, 'unknown') AS region,
    COALESCE(c.status, 'unknown') AS status,
    v.tier,
    v.key_account,
    CAST(v.revenue_12m AS DOUBLE) AS monetary_12m,
    CAST(v.orders_12m AS DOUBLE) AS orders_12m,
    CAST(COALESCE(date_diff('day', v.last_order_date, p.as_of),
                  date_diff('day', c.created_at, p.as_of), 3 * 365) AS DOUBLE) AS recency_days,
    CAST(COALESCE(v.gross_margin_12m, 0) AS DOUBLE) AS margin_12m,
    CASE WHEN v.revenue_12m > 0 THEN CAST(COALESCE(v.gross_margin_12m, 0) / v.revenue_12m AS DOUBLE)
         ELSE 0.0 END AS margin_pct,
    -- Symmetric growth in [-1, 1]: +1 new buyer, -1 stopped, 0 flat; no division blow-ups.
    CAST((v.revenue_12m - CAST(v.revenue_prior_12m AS DECIMAL(18, 2)))
         / greatest(v.revenue_12m + CAST(v.revenue_prior_12m AS DECIMAL(18, 2)), 1) AS DOUBLE) AS growth,
    CAST(v.product_lines_12m AS DOUBLE) AS product_lines,
    CAST(v.service_cases_12m AS DOUBLE) AS service_cases_12m,
    CAST(v.complaints_12m AS DOUBLE) AS complaints_12m,
    CAST(v.returns_12m AS DOUBLE) AS returns_12m,
    CASE WHEN v.revenue_12m > 0 THEN CAST(v.return_credit_12m / v.revenue_12m AS DOUBLE)
         ELSE 0.0 END AS return_rate,
    CAST(COALESCE(d.payment_delay_days, 0) AS DOUBLE) AS payment_delay_days,
    CAST(COALESCE(dl.on_time_rate, 1.0) AS DOUBLE) AS on_time_rate,
    CAST(date_diff('day', COALESCE(c.created_at, v.first_order_date, p.as_of), p.as_of) / 365.25
         AS DOUBLE) AS tenure_years,
    -- Company size from the CRM employee band, as the band's lower bound in employees.
    CAST(COALESCE(TRY_CAST(regexp_extract(crm.size_band, '^[0-9]+') AS INTEGER), 0) AS DOUBLE) AS employees,
    p.as_of AS as_of_date
FROM stg_customer c
CROSS JOIN p
JOIN customer_value v USING (customer_id)
LEFT JOIN crm USING (customer_id)
LEFT JOIN delay d USING (customer_id)
LEFT JOIN delivery dl USING (customer_id)
ORDER BY c.customer_id
