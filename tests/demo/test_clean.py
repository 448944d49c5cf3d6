"""With dirty_share=0 the data is consistent: keys, references, dates and amounts all hold."""

from __future__ import annotations

import pytest

from pipelines.demo.schema import TABLES
from tests.demo.common import AS_OF

PRIMARY_KEYS = [(s, t.name, t.primary_key) for s in TABLES for t in TABLES[s].values()
                if t.primary_key]

# (child view, child key expression, parent view, parent key expression)
REFERENCES = [
    ("crm_contacts", "account_id", "crm_accounts", "account_id"),
    ("crm_opportunities", "account_id", "crm_accounts", "account_id"),
    ("crm_cases", "account_id", "crm_accounts", "account_id"),
    ("crm_accounts", "parent_account_id", "crm_accounts", "account_id"),
    ("erp_sales_orders", "customer_no", "erp_customers", "customer_no"),
    ("erp_sales_order_lines", "order_no", "erp_sales_orders", "order_no"),
    ("erp_sales_order_lines", "product_no", "erp_products", "product_no"),
    ("erp_invoices", "order_no", "erp_sales_orders", "order_no"),
    ("erp_invoices", "customer_no", "erp_customers", "customer_no"),
    ("erp_payments", "invoice_no", "erp_invoices", "invoice_no"),
    ("erp_customer_financials", "customer_no", "erp_customers", "customer_no"),
    ("scm_shipments", "sales_order_ref", "erp_sales_orders", "'SO-' || order_no"),
    ("scm_returns", "shipment_id", "scm_shipments", "shipment_id"),
    ("scm_returns", "product_ref", "erp_products", "product_no"),
]

ERP_DATES = [("customers", "created_on"), ("customers", "changed_on"), ("products", "changed_on"),
             ("sales_orders", "order_date"), ("sales_orders", "requested_delivery_date"),
             ("sales_orders", "changed_on"), ("sales_order_lines", "changed_on"),
             ("invoices", "invoice_date"), ("invoices", "due_date"),
             ("payments", "payment_date"), ("customer_financials", "reported_on")]


def one(con, sql):
    return con.execute(sql).fetchone()[0]


@pytest.mark.parametrize(("system", "table", "key"), PRIMARY_KEYS)
def test_primary_keys_are_unique_and_present(clean_sql, system, table, key):
    rows, distinct, nulls = clean_sql.execute(
        f"SELECT count(*), count(DISTINCT {key}), count(*) - count({key}) FROM {system}_{table}"
    ).fetchone()
    assert rows == distinct and nulls == 0


def test_erp_business_keys_are_unique_when_clean(clean_sql):
    assert one(clean_sql, "SELECT count(*) - count(DISTINCT order_no) FROM erp_sales_orders") == 0
    assert one(clean_sql, """SELECT count(*) FROM (SELECT order_no, line_no FROM
        erp_sales_order_lines GROUP BY ALL HAVING count(*) > 1)""") == 0
    assert one(clean_sql, """SELECT count(*) FROM (SELECT customer_no, fiscal_period FROM
        erp_customer_financials GROUP BY ALL HAVING count(*) > 1)""") == 0


@pytest.mark.parametrize(("child", "key", "parent", "parent_key"), REFERENCES)
def test_every_reference_resolves(clean_sql, child, key, parent, parent_key):
    orphans = one(clean_sql, f"""
        SELECT count(*) FROM {child} c
        WHERE c.{key} IS NOT NULL AND c.{key} NOT IN (SELECT {parent_key} FROM {parent})""")
    nulls = one(clean_sql, f"SELECT count(*) - count({key}) FROM {child}")
    assert orphans == 0
    if key != "parent_account_id":
        assert nulls == 0


@pytest.mark.parametrize(("table", "column"), ERP_DATES)
def test_erp_dates_are_valid_yyyymmdd_text(clean_sql, table, column):
    bad = one(clean_sql, f"""SELECT count(*) FROM erp_{table}
        WHERE try_strptime({column}, '%Y%m%d') IS NULL OR length({column}) <> 8""")
    assert bad == 0


def test_orders_lie_in_the_window_and_after_the_customer_exists(clean_sql):
    first, last = clean_sql.execute(
        "SELECT min(strptime(order_date, '%Y%m%d')), max(strptime(order_date, '%Y%m%d'))"
        " FROM erp_sales_orders").fetchone()
    assert first.date() > AS_OF.replace(year=AS_OF.year - 3)
    assert last.date() <= AS_OF
    early = one(clean_sql, """SELECT count(*) FROM erp_sales_orders o JOIN erp_customers c
        USING (customer_no) WHERE o.order_date < c.created_on""")
    assert early == 0


def test_nothing_happens_after_the_as_of_date(clean_sql):
    checks = {
        "crm_accounts": "last_modified", "crm_contacts": "last_modified",
        "crm_opportunities": "last_modified", "crm_cases": "coalesce(closed_at, opened_at)",
        "scm_shipments": "coalesce(delivered_date, shipped_date)",
        "scm_returns": "return_date",
    }
    for view, column in checks.items():
        latest = one(clean_sql, f"SELECT max({column})::DATE FROM {view}")
        assert latest <= AS_OF, view
    for table, column in [("invoices", "invoice_date"), ("payments", "payment_date"),
                          ("sales_order_lines", "changed_on"), ("customers", "changed_on")]:
        assert one(clean_sql, f"SELECT max({column}) FROM erp_{table}") <= f"{AS_OF:%Y%m%d}"


def test_values_are_in_range(clean_sql):
    assert one(clean_sql, "SELECT min(quantity) FROM erp_sales_order_lines") > 0
    assert one(clean_sql, "SELECT min(quantity) FROM scm_returns") > 0
    low, high = clean_sql.execute(
        "SELECT min(discount_pct), max(discount_pct) FROM erp_sales_order_lines").fetchone()
    assert 0 <= low and high <= 0.3
    low, high = clean_sql.execute(
        "SELECT min(1 - unit_cost / list_price), max(1 - unit_cost / list_price)"
        " FROM erp_products").fetchone()
    assert 0.09 <= low and high <= 0.61
    assert one(clean_sql, "SELECT min(freight_cost) FROM scm_shipments") > 0
    assert one(clean_sql, """SELECT count(*) FROM crm_cases WHERE (status = 'Open') <>
        (closed_at IS NULL) OR (satisfaction_score IS NOT NULL AND status = 'Open')
        OR satisfaction_score NOT BETWEEN 1 AND 5""") == 0


def test_invoice_is_the_sum_of_its_order_lines(clean_sql):
    worst = one(clean_sql, """
        SELECT max(abs(i.amount - l.net)) FROM erp_invoices i JOIN (
            SELECT order_no, sum(round(quantity::DECIMAL(12, 3) * unit_price::DECIMAL(12, 2)
                                       * (1 - discount_pct::DECIMAL(5, 4)), 2)) AS net
            FROM erp_sales_order_lines GROUP BY ALL) l USING (order_no)""")
    assert worst < 0.001  # to the cent


def test_keys_differ_per_system_but_truth_links_them(clean_sql):
    # The SCM only knows its own consignee code; the truth maps it to the ERP customer.
    mismatched = one(clean_sql, """
        SELECT count(*) FROM scm_shipments s
        JOIN erp_sales_orders o ON s.sales_order_ref = 'SO-' || o.order_no
        JOIN truth t ON t.customer_no = o.customer_no
        WHERE s.consignee_code <> t.consignee_code""")
    assert mismatched == 0
    assert one(clean_sql, "SELECT count(*) FROM truth WHERE consignee_code = customer_no") == 0
    assert one(clean_sql, """SELECT count(DISTINCT consignee_code) FROM truth""") == one(
        clean_sql, "SELECT count(*) FROM truth")


def test_crm_to_erp_link_has_the_planted_gaps(clean_sql):
    customers = one(clean_sql, "SELECT count(*) FROM truth")
    no_crm = one(clean_sql, "SELECT count(*) FROM truth WHERE crm_account_id IS NULL")
    assert 0.015 <= no_crm / customers <= 0.05
    linked = clean_sql.execute("""
        SELECT t.erp_link, count(*) AS accounts,
               count(*) FILTER (WHERE a.erp_customer_number = t.customer_no) AS correct,
               count(*) FILTER (WHERE a.erp_customer_number IS NULL) AS missing
        FROM truth t JOIN crm_accounts a ON a.account_id = t.crm_account_id GROUP BY ALL
    """).fetchall()
    by_link = {link: (n, correct, missing) for link, n, correct, missing in linked}
    n_ok, correct, _ = by_link["ok"]
    assert correct == n_ok
    n_missing, _, missing = by_link["missing"]
    assert missing == n_missing and 0.03 <= n_missing / customers <= 0.08
    n_wrong, correct, missing = by_link["wrong"]
    assert correct == 0 and missing == 0 and 0.01 <= n_wrong / customers <= 0.04
    # Prospects: CRM accounts that are nobody's true account and never ordered.
    prospects = one(clean_sql, """SELECT count(*) FROM crm_accounts
        WHERE account_id NOT IN (SELECT crm_account_id FROM truth WHERE crm_account_id NOT NULL)""")
    accounts = one(clean_sql, "SELECT count(*) FROM crm_accounts")
    assert 0.01 <= prospects / accounts <= 0.03


def test_in_transit_shipments_are_recent(clean_sql):
    oldest = one(clean_sql, "SELECT min(shipped_date) FROM scm_shipments WHERE delivered_date IS NULL")
    assert (AS_OF - oldest).days <= 20
    assert one(clean_sql, "SELECT count(*) FROM scm_shipments WHERE delivered_date < shipped_date") == 0
