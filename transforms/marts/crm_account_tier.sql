-- crm_account_tier: one row per CRM account matched to a customer — what reverse ETL writes
-- into the CRM. Several accounts matched to one customer each carry that customer's tier.
SELECT
    x.source_key AS crm_account_id,
    v.customer_id,
    v.tier,
    v.abc_class,
    v.key_account,
    v.revenue_12m,
    v.orders_12m,
    v.gross_margin_12m,
    v.last_order_date,
    v.as_of_date
FROM stg_customer_xref x
JOIN customer_value v USING (customer_id)
WHERE x.system = 'crm'
ORDER BY crm_account_id
