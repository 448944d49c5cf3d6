-- customer_value: one row per customer (ERP customer master) with what it bought in the
-- 12 months up to and including the as-of date. Tier and ABC class are added in Python
-- (models/pyramid.py) from the configured cut-offs.
WITH window_start AS (
    SELECT CAST(getvariable('as_of') - INTERVAL 12 MONTH AS DATE) AS d
),
day AS (SELECT * FROM customer_day),
lifetime AS (
    SELECT customer_id, min(order_date) AS first_order_date, max(order_date) AS last_order_date
    FROM day GROUP BY customer_id
),
last_12m AS (
    SELECT
        customer_id,
        sum(revenue) AS revenue_12m,
        sum(orders) AS orders_12m,
        -- Margin is only known when every line has a product cost.
        CASE WHEN sum(costed_lines) = sum(lines) THEN sum(revenue) - sum(cost) END AS gross_margin_12m
    FROM day, window_start
    WHERE order_date > window_start.d
    GROUP BY customer_id
),
crm_accounts AS (
    SELECT customer_id, count(*) AS crm_accounts
    FROM stg_customer_xref WHERE system = 'crm' AND customer_id IS NOT NULL
    GROUP BY customer_id
)
SELECT
    c.customer_id,
    c.name AS customer_name,
    c.country,
    c.industry,
    CAST(COALESCE(m.revenue_12m, 0) AS DECIMAL(18, 2)) AS revenue_12m,
    CAST(COALESCE(m.orders_12m, 0) AS BIGINT) AS orders_12m,
    CAST(COALESCE(m.gross_margin_12m, CASE WHEN m.customer_id IS NULL THEN 0 END) AS DECIMAL(18, 2))
        AS gross_margin_12m,
    f.first_order_date,
    f.last_order_date,
    CAST(COALESCE(a.crm_accounts, 0) AS BIGINT) AS crm_accounts,
    getvariable('as_of') AS as_of_date
FROM stg_customer c
LEFT JOIN last_12m m USING (customer_id)
LEFT JOIN lifetime f USING (customer_id)
LEFT JOIN crm_accounts a USING (customer_id)
