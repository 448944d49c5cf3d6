-- stg_customer_xref: one row per source record that names a customer — ERP customer, CRM account,
-- SCM consignee — and the one KAM customer id it resolves to (the ERP customer number, the system
-- of record), or NULL with the reason when it cannot be matched. pipelines/staging.py sets
-- `xref_all` and `xref_crm` (true: the whole table) and the table `_xref_consignees`.
WITH customer AS (
    SELECT customer_id,
           regexp_replace(
               regexp_replace(lower(name), '\b(gmbh|ag|inc|ltd|llc|plc|co|corp|sa|bv|srl|spa|kg|se)\b', '', 'g'),
               '[^a-z0-9]', '', 'g') AS norm_name
    FROM stg_customer
),
unique_name AS (
    SELECT norm_name, min(customer_id) AS customer_id
    FROM customer WHERE norm_name <> ''
    GROUP BY norm_name HAVING count(*) = 1
),
account AS (
    SELECT account_id, customer_ref,
           regexp_replace(
               regexp_replace(lower(name), '\b(gmbh|ag|inc|ltd|llc|plc|co|corp|sa|bv|srl|spa|kg|se)\b', '', 'g'),
               '[^a-z0-9]', '', 'g') AS norm_name
    FROM stg_account
),
crm AS (
    SELECT
        'crm' AS system,
        a.account_id AS source_key,
        CASE
            WHEN by_ref.customer_id IS NOT NULL
                 AND (by_name.customer_id IS NULL OR by_name.customer_id = by_ref.customer_id)
                THEN by_ref.customer_id
            ELSE by_name.customer_id
        END AS customer_id,
        CASE
            WHEN by_ref.customer_id IS NOT NULL AND by_name.customer_id = by_ref.customer_id
                THEN 'erp number and name'
            WHEN by_ref.customer_id IS NOT NULL AND by_name.customer_id IS NULL
                THEN 'erp number'
            WHEN by_name.customer_id IS NOT NULL AND by_ref.customer_id IS NOT NULL
                THEN 'name (erp number points elsewhere)'
            WHEN by_name.customer_id IS NOT NULL AND a.customer_ref IS NOT NULL
                THEN 'name (erp number unknown)'
            WHEN by_name.customer_id IS NOT NULL THEN 'name (no erp number)'
            WHEN a.customer_ref IS NULL THEN 'unmatched: no erp number, no name match'
            ELSE 'unmatched: erp number unknown, no name match'
        END AS match_method
    FROM account a
    LEFT JOIN customer by_ref ON by_ref.customer_id = a.customer_ref
    LEFT JOIN unique_name by_name ON by_name.norm_name = a.norm_name
    WHERE getvariable('xref_crm')  -- false on a merged night that changed no customer or account
),
erp AS (
    SELECT 'erp' AS system, customer_id AS source_key, customer_id,
           'system of record' AS match_method
    FROM stg_customer
),
consignee_votes AS (
    SELECT s.consignee_code, o.customer_id, count(*) AS shipments
    FROM stg_shipment s JOIN stg_order o USING (order_id)
    WHERE s.consignee_code IS NOT NULL
      -- a merged night revotes only the consignees its re-checked shipments and orders touch
      AND (getvariable('xref_all') OR s.consignee_code IN (SELECT consignee_code FROM _xref_consignees))
    GROUP BY ALL
),
scm AS (
    SELECT 'scm' AS system, consignee_code AS source_key,
           arg_max(customer_id, (shipments, customer_id)) AS customer_id,
           'shipped orders' AS match_method
    FROM consignee_votes
    GROUP BY consignee_code
)
SELECT * FROM erp
UNION ALL SELECT * FROM crm
UNION ALL SELECT * FROM scm
