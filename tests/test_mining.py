"""The mine step on the generated demo: planted churn rule learned from the warehouse, segments
explained by rules, stable ids from one night to the next, cross-sell offers that make sense."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest
from threadpoolctl import threadpool_limits

from pipelines.config import load_config
from pipelines.duckdb_session import sql_file
from pipelines.mining import MARTS, mine
from pipelines.nightly import run_nightly
from pipelines.warehouse import Warehouse
from tests.conftest import DEMO_AS_OF

AS_OF = date.fromisoformat(DEMO_AS_OF)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture()
def mined(demo_workspace):
    settings = load_config(demo_workspace.config)
    results = {r.step: r for r in run_nightly(AS_OF, settings, steps=["extract", "stage", "build", "mine"])}
    return settings, Warehouse(settings.warehouse_path), results["mine"]


def _frames(warehouse: Warehouse, truth=None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in MARTS:
        con.register(name, warehouse.read(name))
    if truth is not None:
        con.register("truth", truth)
    return con


def test_mine_learns_the_planted_churn_rule_from_the_warehouse(mined, demo_systems):
    _, warehouse, _ = mined
    con = _frames(warehouse, demo_systems.truth)
    rules = con.execute("SELECT rule, rule_sql, conditions FROM segment_rule WHERE target = 'lost' "
                        "ORDER BY rule_no").fetchall()
    assert 0 < len(rules) <= 5
    assert all(conditions <= 3 for _, _, conditions in rules)
    fired = " OR ".join(f"({sql})" for _, sql, _ in rules)
    precision, = con.execute(f"""
        SELECT avg(t.is_lost::INT) FROM customer_features f JOIN truth t ON t.customer_no = f.customer_id
        WHERE {fired}""").fetchone()
    assert precision >= 0.99, rules
    for part in ("churn_recency_cases", "churn_delay_on_time"):
        best = max(con.execute(f"""
            SELECT avg(({sql})::INT) FROM customer_features f
            JOIN truth t ON t.customer_no = f.customer_id WHERE t.{part}""").fetchone()[0]
            for _, sql, _ in rules)
        assert best >= 0.90, (part, rules)


def test_key_account_segment_is_explained_by_few_rules_on_held_out_customers(mined):
    _, warehouse, result = mined
    key = result.details["key_account_segment"]
    con = _frames(warehouse)
    rows = con.execute("SELECT rules_in_set, fidelity_holdout, conditions FROM segment_rule "
                       "WHERE segment_id = ?", [key]).fetchall()
    assert rows and rows[0][0] <= 4
    assert rows[0][1] >= 0.96
    assert all(conditions <= 3 for *_, conditions in rows)
    # The key-account segment holds more key accounts than any other segment.
    shares = dict(con.execute("SELECT segment_id, key_account_share FROM segment_profile").fetchall())
    assert shares[key] == max(shares.values())


def test_marts_carry_the_as_of_date_and_run_id_and_add_up(mined):
    _, warehouse, result = mined
    con = _frames(warehouse)
    for name in MARTS:
        dates = con.execute(f"SELECT DISTINCT as_of_date, run_id FROM {name}").fetchall()
        assert dates == [(AS_OF, f"mine-{DEMO_AS_OF}")], name
    customers = con.execute("SELECT count(*) FROM customer_features").fetchone()[0]
    assert con.execute("SELECT count(DISTINCT customer_id) FROM customer_segment").fetchone()[0] == customers
    shares = con.execute("""SELECT sum(share_of_customers), sum(share_of_revenue),
                                   count(DISTINCT segment_name), count(*) FROM segment_profile""").fetchone()
    assert shares[0] == pytest.approx(1.0) and shares[1] == pytest.approx(1.0)
    assert shares[2] == shares[3] >= 2  # every segment has its own name
    q = result.details["quality"]
    assert -1 <= q["silhouette"] <= 1 and q["davies_bouldin"] > 0


def test_features_count_service_and_returns_as_customer_value_does(mined):
    """One definition of a customer's service cases, complaints and returns: the segment features
    and the cost-to-serve read the same counts, and they match a count straight from staging."""
    _, warehouse, _ = mined
    con = _frames(warehouse)
    for name in ("customer_value", "stg_service_case", "stg_customer_xref", "stg_return", "stg_shipment",
                 "stg_order"):
        con.register(name, warehouse.read(name))
    con.execute(f"SET VARIABLE as_of = DATE '{DEMO_AS_OF}'")
    counted = con.execute("""
        WITH cases AS (
            SELECT x.customer_id, count(*) AS n, count(*) FILTER (WHERE c.is_complaint) AS complaints
            FROM stg_service_case c
            JOIN stg_customer_xref x ON x.system = 'crm' AND x.source_key = c.account_id
            WHERE CAST(c.opened_at AS DATE) > getvariable('as_of') - INTERVAL 12 MONTH
              AND CAST(c.opened_at AS DATE) <= getvariable('as_of')
            GROUP BY 1),
        returned AS (
            SELECT o.customer_id, count(*) AS n, sum(r.credit_amount) AS credit
            FROM stg_return r JOIN stg_shipment s USING (shipment_id) JOIN stg_order o USING (order_id)
            WHERE r.return_date > getvariable('as_of') - INTERVAL 12 MONTH
              AND r.return_date <= getvariable('as_of')
            GROUP BY 1)
        SELECT count(*) FILTER (WHERE f.service_cases_12m <> COALESCE(c.n, 0)),
               count(*) FILTER (WHERE f.complaints_12m <> COALESCE(c.complaints, 0)),
               count(*) FILTER (WHERE f.returns_12m <> COALESCE(r.n, 0)),
               count(*) FILTER (WHERE abs(f.return_rate - CASE WHEN v.revenue_12m > 0
                                THEN COALESCE(r.credit, 0) / v.revenue_12m ELSE 0 END) > 1e-9),
               count(*) FILTER (WHERE f.complaints_12m <> v.complaints_12m),
               count(*) FILTER (WHERE c.n > 0), count(*) FILTER (WHERE r.n > 0), count(*)
        FROM customer_features f JOIN customer_value v USING (customer_id)
        LEFT JOIN cases c USING (customer_id) LEFT JOIN returned r USING (customer_id)""").fetchone()
    *mismatches, with_cases, with_returns, customers = counted
    assert mismatches == [0, 0, 0, 0, 0]
    assert 0 < with_cases < customers and 0 < with_returns < customers  # the counts were exercised


def test_next_best_offers_are_lines_the_account_lacks_and_its_peers_buy(mined):
    _, warehouse, _ = mined
    con = _frames(warehouse)
    for name in ("stg_order", "stg_order_line", "stg_product"):
        con.register(name, warehouse.read(name))
    con.execute(f"SET VARIABLE as_of = DATE '{DEMO_AS_OF}'")
    for view in ("order_line_value", "sales_line"):
        con.execute(f"CREATE VIEW {view} AS {sql_file('marts', view)}")
    con.execute(f"CREATE TABLE basket AS {sql_file('marts', 'customer_product_line_from_lines')}")
    # what mining read: build's customer_product_line holds exactly these baskets
    stored = sorted(warehouse.read("customer_product_line").to_pylist(), key=lambda r: tuple(r.values()))
    expected = con.execute("SELECT customer_id, product_line FROM basket ORDER BY ALL").fetchdf()
    assert len(stored) > 100 and stored == expected.to_dict("records")
    bad = con.execute("""
        SELECT count(*) FROM account_next_best o JOIN cross_sell_rule r USING (rule_id)
        WHERE r.consequent <> o.product_line OR o.rank > 3
           OR EXISTS (SELECT 1 FROM basket b WHERE b.customer_id = o.customer_id
                      AND b.product_line = o.product_line)
           OR (SELECT count(*) FROM basket b WHERE b.customer_id = o.customer_id
               AND list_contains(r.antecedent, b.product_line)) < len(r.antecedent)""").fetchone()[0]
    assert bad == 0
    offers = con.execute("SELECT count(*), count(DISTINCT customer_id) FROM account_next_best").fetchone()
    assert offers[0] > 0 and offers[1] > 100
    # The demo plants Hydraulics -> Pneumatics; its rule must be found with lift well above 1.
    lift = con.execute("""SELECT max(lift) FROM cross_sell_rule
                          WHERE antecedent = ['Hydraulics'] AND consequent = 'Pneumatics'""").fetchone()[0]
    assert lift is not None and lift > 1.5


def test_rerunning_the_same_night_changes_nothing(mined):
    settings, warehouse, _ = mined
    before = {t: sorted(map(repr, warehouse.read(t).to_pylist())) for t in MARTS}
    mine(settings, AS_OF)
    assert {t: sorted(map(repr, warehouse.read(t).to_pylist())) for t in MARTS} == before


def test_next_night_keeps_segment_ids_and_names(demo_workspace):
    settings = load_config(demo_workspace.config)
    yesterday = AS_OF - timedelta(days=1)
    run_nightly(yesterday, settings, steps=["extract", "stage", "build", "mine"])
    tonight = {r.step: r for r in run_nightly(AS_OF, settings, steps=["extract", "stage", "build", "mine"])}
    con = _frames(Warehouse(settings.warehouse_path))
    same, kept_names = con.execute(f"""
        SELECT avg((a.segment_id = b.segment_id)::INT), bool_and(a.segment_name = b.segment_name
                                                           OR a.segment_id <> b.segment_id)
        FROM customer_segment a JOIN customer_segment b USING (customer_id)
        WHERE a.as_of_date = DATE '{yesterday}' AND b.as_of_date = DATE '{AS_OF}'""").fetchone()
    assert same >= 0.95
    assert kept_names
    assert not tonight["mine"].details["vanished"]
    assert all(status == "kept" for _, _, status, _ in tonight["mine"].details["segments"])
