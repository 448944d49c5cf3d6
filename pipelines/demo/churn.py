"""The planted churn label: which customers the ERP marks LOST, decided by a rule over the facts.

churn = (no order for more than 20 weeks AND at least 5 service cases in the last 12 months)
     OR (mean payment delay over 25 days AND on-time delivery rate under 0.85).

The rule is applied to the generated records themselves (orders, cases, payments, shipments),
with the same definitions KAM's customer features use (transforms/marts/customer_features.sql),
so a rule learner that reads the warehouse can recover it exactly, up to the few records the dirty
faults touch. The population steers customers into both parts (population.py); this module only
measures and labels, so customers who meet the rule by chance are labelled too.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.demo.customers import Parties
from pipelines.demo.schema import to_arrow

RECENCY_DAYS = 140  # 20 weeks
MIN_CASES = 5
DELAY_DAYS = 25
ON_TIME = 0.85

_FACTS = f"""
WITH p AS (SELECT CAST(? AS DATE) AS as_of, CAST(? AS DATE) - INTERVAL 12 MONTH AS since),
last_order AS (
    SELECT customer_no, max(strptime(order_date, '%Y%m%d')::DATE) AS day
    FROM orders WHERE status <> 'CANCELLED' GROUP BY customer_no
),
recency AS (  -- a customer who never ordered counts from the day it was created
    SELECT k.customer_no, date_diff('day', coalesce(o.day, k.created), as_of) AS d
    FROM keys k LEFT JOIN last_order o USING (customer_no), p
),
cases AS (
    SELECT m.customer_no, count(*) AS n
    FROM cases c JOIN account_map m USING (account_id), p
    WHERE CAST(c.opened_at AS DATE) > since AND CAST(c.opened_at AS DATE) <= as_of
    GROUP BY m.customer_no
),
delay AS (
    SELECT y.customer_no,
           avg(date_diff('day', strptime(i.due_date, '%Y%m%d'), strptime(y.payment_date, '%Y%m%d')))
               AS d
    FROM payments y JOIN invoices i USING (invoice_no), p
    WHERE strptime(y.payment_date, '%Y%m%d') > since
    GROUP BY y.customer_no
),
on_time AS (
    SELECT m.customer_no, avg(CASE WHEN s.delivered_date <= s.promised_date THEN 1 ELSE 0 END) AS r
    FROM shipments s JOIN consignee_map m USING (consignee_code), p
    WHERE s.delivered_date > since AND s.delivered_date <= as_of
    GROUP BY m.customer_no
)
SELECT k.customer_no,
       coalesce(recency.d > {RECENCY_DAYS} AND coalesce(cases.n, 0) >= {MIN_CASES}, FALSE) AS part_a,
       coalesce(delay.d > {DELAY_DAYS} AND on_time.r < {ON_TIME}, FALSE) AS part_b
FROM keys k
LEFT JOIN recency USING (customer_no) LEFT JOIN cases USING (customer_no)
LEFT JOIN delay USING (customer_no) LEFT JOIN on_time USING (customer_no)
ORDER BY k.position
"""


def churn_parts(erp: dict[str, pa.Table], crm: dict[str, pa.Table], scm: dict[str, pa.Table],
                parties: Parties, created: np.ndarray, as_of) -> tuple[np.ndarray, np.ndarray]:
    """(part_a, part_b) per population index, measured on the clean generated tables.

    `created` is each customer's creation date (datetime64[D]).
    """
    con = duckdb.connect()
    try:
        n = len(parties.customer_no)
        owner = parties.account_pop >= 0
        con.register("keys", pa.table({"customer_no": parties.customer_no,
                                       "created": to_arrow(created), "position": np.arange(n)}))
        con.register("account_map", pa.table({
            "account_id": parties.accounts["account_id"].combine_chunks().filter(pa.array(owner)),
            "customer_no": parties.customer_no.take(pa.array(parties.account_pop[owner])),
        }))
        con.register("consignee_map", pa.table({"consignee_code": parties.consignee_code,
                                                "customer_no": parties.customer_no}))
        con.register("orders", erp["sales_orders"])
        con.register("payments", erp["payments"])
        con.register("invoices", erp["invoices"])
        con.register("cases", crm["cases"])
        con.register("shipments", scm["shipments"])
        day = as_of.isoformat()
        result = con.execute(_FACTS, [day, day]).to_arrow_table()
    finally:
        con.close()
    return (result["part_a"].to_numpy(zero_copy_only=False),
            result["part_b"].to_numpy(zero_copy_only=False))
