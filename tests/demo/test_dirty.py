"""dirty_share plants every kind of fault it promises, where it says, and nothing when 0."""

from __future__ import annotations

import pytest

from pipelines.demo import dirty as faults
from pipelines.demo.schema import TABLES
from tests.demo.common import AS_OF

ALL_KINDS = [(system, table, kind) for (system, table), kinds in faults.KINDS.items()
             for kind in kinds]


def one(con, sql):
    return con.execute(sql).fetchone()[0]


def test_clean_data_has_no_faults(clean):
    assert clean.dirty.num_rows == 0
    assert clean.dirty.schema.field("kind").type == "string"


@pytest.mark.parametrize(("system", "table", "kind"), ALL_KINDS)
def test_every_kind_is_planted_and_logged(dirty, system, table, kind):
    logged = {(r["system"], r["table"], r["kind"]): r["rows"] for r in dirty.dirty.to_pylist()}
    assert logged.get((system, table, kind), 0) > 0


def test_about_the_requested_share_of_rows_is_faulty(dirty):
    planted = sum(dirty.dirty["rows"].to_pylist())
    rows = sum(t.num_rows for tables in dirty.values() for t in tables.values())
    assert 0.03 <= planted / rows <= 0.07


def test_order_faults_are_visible_in_the_data(dirty_sql):
    exact = one(dirty_sql, """SELECT count(*) FROM (SELECT * FROM erp_sales_orders
        GROUP BY ALL HAVING count(*) > 1)""")
    same_key = one(dirty_sql, """SELECT count(*) FROM (SELECT order_no FROM erp_sales_orders
        GROUP BY ALL HAVING count(DISTINCT (status, changed_on)) > 1)""")
    null_customer = one(dirty_sql, "SELECT count(*) FROM erp_sales_orders WHERE customer_no IS NULL")
    unknown_customer = one(dirty_sql, """SELECT count(*) FROM erp_sales_orders
        WHERE customer_no NOT IN (SELECT customer_no FROM erp_customers)""")
    future = one(dirty_sql, f"""SELECT count(*) FROM erp_sales_orders
        WHERE try_strptime(order_date, '%Y%m%d') > DATE '{AS_OF}'""")
    unparseable = one(dirty_sql, """SELECT count(*) FROM erp_sales_orders
        WHERE try_strptime(order_date, '%Y%m%d') IS NULL""")
    assert min(exact, same_key, null_customer, unknown_customer, future, unparseable) > 0


def test_line_faults_are_visible_in_the_data(dirty_sql):
    exact = one(dirty_sql, """SELECT count(*) FROM (SELECT * FROM erp_sales_order_lines
        GROUP BY ALL HAVING count(*) > 1)""")
    same_key = one(dirty_sql, """SELECT count(*) FROM (SELECT order_no, line_no
        FROM erp_sales_order_lines GROUP BY ALL HAVING count(DISTINCT quantity) > 1)""")
    null_order = one(dirty_sql, "SELECT count(*) FROM erp_sales_order_lines WHERE order_no IS NULL")
    negative = one(dirty_sql, "SELECT count(*) FROM erp_sales_order_lines WHERE quantity < 0")
    orphan = one(dirty_sql, """SELECT count(*) FROM erp_sales_order_lines
        WHERE order_no NOT IN (SELECT order_no FROM erp_sales_orders)""")
    bad_date = one(dirty_sql, """SELECT count(*) FROM erp_sales_order_lines
        WHERE try_strptime(changed_on, '%Y%m%d') IS NULL""")
    assert min(exact, same_key, null_order, negative, orphan, bad_date) > 0


def test_other_systems_faults_are_visible_in_the_data(dirty_sql):
    orphan_cases = one(dirty_sql, """SELECT count(*) FROM crm_cases
        WHERE account_id NOT IN (SELECT account_id FROM crm_accounts)""")
    contacts_without_account = one(dirty_sql,
                                   "SELECT count(*) FROM crm_contacts WHERE account_id IS NULL")
    twice_entered = one(dirty_sql, """SELECT count(*) FROM (SELECT upper(account_name)
        FROM crm_accounts GROUP BY ALL HAVING count(*) > 1)""")
    orphan_shipments = one(dirty_sql, """SELECT count(*) FROM scm_shipments WHERE sales_order_ref
        NOT IN (SELECT 'SO-' || order_no FROM erp_sales_orders WHERE order_no IS NOT NULL)""")
    negative_returns = one(dirty_sql, "SELECT count(*) FROM scm_returns WHERE quantity < 0")
    bad_customer_dates = one(dirty_sql, """SELECT count(*) FROM erp_customers
        WHERE try_strptime(created_on, '%Y%m%d') IS NULL""")
    assert min(orphan_cases, contacts_without_account, twice_entered, orphan_shipments,
               negative_returns, bad_customer_dates) > 0


@pytest.mark.parametrize(("system", "table"), [(s, t.name) for s in TABLES
                                                for t in TABLES[s].values() if t.primary_key])
def test_primary_keys_still_hold_so_the_databases_accept_the_rows(dirty_sql, system, table):
    key = TABLES[system][table].primary_key
    rows, distinct = dirty_sql.execute(
        f"SELECT count(*), count(DISTINCT {key}) FROM {system}_{table}").fetchone()
    assert rows == distinct


def test_faults_do_not_touch_the_ground_truth(dirty, clean):
    assert dirty.truth.num_rows == dirty["erp"]["customers"].num_rows
    assert dirty.truth.schema == clean.truth.schema
