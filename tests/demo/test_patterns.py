"""The planted patterns are really in the data, strongly enough for a later job to find them."""

from __future__ import annotations

import pytest

from tests.demo.common import AS_OF

PLANTED_PAIRS = [("Hydraulics", "Pneumatics"), ("Fasteners", "Tools"), ("Electrical", "Sensors")]


def one(con, sql):
    return con.execute(sql).fetchone()[0]


def test_revenue_is_heavy_tailed(clean_sql):
    top1, top5, top20 = clean_sql.execute("""
        SELECT sum(last_12m) FILTER (WHERE rank <= 0.01) / sum(last_12m),
               sum(last_12m) FILTER (WHERE rank <= 0.05) / sum(last_12m),
               sum(last_12m) FILTER (WHERE rank <= 0.20) / sum(last_12m)
        FROM (SELECT last_12m, percent_rank() OVER (ORDER BY last_12m DESC) AS rank
              FROM customer_revenue)""").fetchone()
    assert top20 >= 0.6
    assert top5 >= 0.25 and top1 >= 0.05


def test_decliners_were_top_customers_and_lost_most_of_their_revenue(clean_sql):
    n, before, after, top_decile = clean_sql.execute("""
        SELECT count(*), sum(prior_12m), sum(last_12m), avg((rank <= 0.1)::INT)
        FROM (SELECT *, percent_rank() OVER (ORDER BY years_1_2 DESC) AS rank
              FROM customer_revenue)
        WHERE is_declining""").fetchone()
    assert n >= 20
    assert after / before <= 0.5
    assert top_decile >= 0.7
    typical = one(clean_sql, """SELECT median(last_12m / prior_12m) FROM customer_revenue
        WHERE is_declining AND prior_12m > 0""")
    assert typical <= 0.5


def test_growing_customers_grow_and_others_hold_steady(clean_sql):
    growing = one(clean_sql, """SELECT sum(last_12m) / sum(prior_12m) FROM customer_revenue
        WHERE is_growing""")
    steady = one(clean_sql, """SELECT sum(last_12m) / sum(prior_12m) FROM customer_revenue
        WHERE NOT (is_growing OR is_declining OR is_churned) AND created_on < DATE '2023-01-01'""")
    assert growing >= 1.5
    assert 0.8 <= steady <= 1.25


def test_late_payers_pay_late_and_the_rest_on_time(clean_sql):
    rows = dict(clean_sql.execute("""
        SELECT t.is_late_payer,
               avg(date_diff('day', strptime(i.due_date, '%Y%m%d'),
                             strptime(p.payment_date, '%Y%m%d')))
        FROM erp_payments p JOIN erp_invoices i USING (invoice_no) JOIN truth t
          ON t.customer_no = i.customer_no
        GROUP BY ALL""").fetchall())
    assert 20 <= rows[True] <= 90
    assert rows[False] <= 3
    # Some invoices stay unpaid long after their due date, mostly the late payers'.
    overdue = dict(clean_sql.execute(f"""
        SELECT t.is_late_payer, avg((p.invoice_no IS NULL)::INT)
        FROM erp_invoices i JOIN truth t USING (customer_no)
        LEFT JOIN erp_payments p USING (invoice_no)
        WHERE strptime(i.due_date, '%Y%m%d') < DATE '{AS_OF}' - 120
        GROUP BY ALL""").fetchall())
    assert overdue[True] > overdue[False] > 0


def test_complainers_complain_often_urgently_and_unhappily(clean_sql):
    # Complaints per year of CRM customers over the part of the window they existed.
    per_year = dict(clean_sql.execute(f"""
        SELECT t.is_complainer, avg(coalesce(c.n, 0) / (date_diff('day',
            greatest(t.created_on, DATE '{AS_OF}' - 1095), DATE '{AS_OF}' + 1) / 365.25))
        FROM truth t LEFT JOIN (SELECT account_id, count(*) AS n FROM crm_cases
                                WHERE case_type = 'Complaint' GROUP BY ALL) c
          ON c.account_id = t.crm_account_id
        WHERE t.crm_account_id IS NOT NULL AND NOT t.is_churned
          AND t.created_on < DATE '{AS_OF}' - 180
        GROUP BY ALL""").fetchall())
    assert per_year[True] >= 4
    assert per_year[True] >= 5 * per_year[False]
    quality = {flag: (urgent, score) for flag, urgent, score in clean_sql.execute("""
        SELECT t.is_complainer, avg((c.priority IN ('High', 'Critical'))::INT),
               avg(c.satisfaction_score)
        FROM crm_cases c JOIN truth t ON c.account_id = t.crm_account_id
        WHERE c.case_type = 'Complaint' GROUP BY ALL""").fetchall()}
    assert quality[True][0] >= 0.8 > quality[False][0]
    assert quality[True][1] <= 2.0 and quality[False][1] >= 3.0


@pytest.mark.parametrize(("a", "b"), PLANTED_PAIRS)
def test_planted_product_line_pairs_have_lift(clean_sql, a, b):
    lift = one(clean_sql, f"""
        WITH bought AS (SELECT DISTINCT v.customer_no, p.product_line
                        FROM line_value v JOIN erp_products p USING (product_no)),
             n AS (SELECT count(DISTINCT customer_no)::DOUBLE AS n FROM bought)
        SELECT (SELECT count(*) FROM bought x JOIN bought y USING (customer_no)
                WHERE x.product_line = '{a}' AND y.product_line = '{b}') * (SELECT n FROM n)
             / ((SELECT count(*) FROM bought WHERE product_line = '{a}')
                * (SELECT count(*) FROM bought WHERE product_line = '{b}'))""")
    assert lift > 1.5


def test_customers_buy_from_a_few_lines(clean_sql):
    median_lines = one(clean_sql, """
        SELECT median(n) FROM (SELECT customer_no, count(DISTINCT p.product_line) AS n
        FROM line_value v JOIN erp_products p USING (product_no) GROUP BY ALL)""")
    # A few lines each: not single-line buyers (nothing to cross-sell), not buyers of everything.
    assert 2 <= median_lines <= 4


def test_costly_small_customers_cost_more_than_they_bring(clean_sql):
    rows = {flag: rest for flag, *rest in clean_sql.execute("""
        WITH freight AS (SELECT consignee_code, sum(freight_cost) AS freight, count(*) AS shipments
                         FROM scm_shipments GROUP BY ALL),
             returned AS (SELECT s.consignee_code, sum(credit_amount) AS credited
                          FROM scm_returns r JOIN scm_shipments s USING (shipment_id) GROUP BY ALL),
             cases AS (SELECT account_id, count(*) AS cases FROM crm_cases GROUP BY ALL)
        SELECT r.is_costly_small,
               sum(f.freight) / sum(r.years_1_2 + r.last_12m),
               sum(coalesce(credited, 0)) / sum(r.years_1_2 + r.last_12m),
               avg(coalesce(cases, 0)),
               median(r.years_1_2 + r.last_12m),
               avg((r.years_1_2 + r.last_12m) / shipments)
        FROM customer_revenue r JOIN freight f USING (consignee_code)
        LEFT JOIN returned USING (consignee_code)
        LEFT JOIN cases c ON c.account_id = r.crm_account_id
        GROUP BY ALL""").fetchall()}
    freight_share, credited, cases, revenue, per_shipment = rows[True]
    other_freight, other_credited, other_cases, other_revenue, other_per_shipment = rows[False]
    assert freight_share >= 0.2 and freight_share >= 5 * other_freight
    assert credited >= 3 * other_credited  # returns, as a share of what they buy
    assert cases >= 3 * other_cases
    assert per_shipment <= other_per_shipment / 5  # tiny orders
    assert revenue <= other_revenue  # and small customers


def test_orders_follow_the_seasons_and_the_week(clean_sql):
    by_month = dict(clean_sql.execute("""
        SELECT month(strptime(order_date, '%Y%m%d')), count(*) / 3 FROM erp_sales_orders
        GROUP BY ALL""").fetchall())
    q4 = (by_month[10] + by_month[11] + by_month[12]) / 3
    assert q4 > 1.3 * by_month[8]
    assert by_month[11] > by_month[12] and by_month[11] > by_month[8]
    weekday = dict(clean_sql.execute("""
        SELECT isodow(strptime(order_date, '%Y%m%d')) >= 6, count(*) / count(DISTINCT order_date)
        FROM erp_sales_orders GROUP BY ALL""").fetchall())
    assert weekday[True] < 0.5 * weekday[False]


def test_financials_exist_for_a_subset_biased_to_large_customers(clean_sql):
    share, big_share = clean_sql.execute("""
        SELECT avg(has::INT), avg(has::INT) FILTER (WHERE value_rank >= 0.8)
        FROM (SELECT t.value_rank, t.customer_no IN (SELECT customer_no
                                                     FROM erp_customer_financials) AS has
              FROM truth t)""").fetchone()
    assert 0.3 <= share <= 0.5
    assert big_share > share + 0.2
    weak = dict(clean_sql.execute("""
        SELECT t.is_late_payer, avg(f.current_assets / f.current_liabilities)
        FROM erp_customer_financials f JOIN truth t USING (customer_no) GROUP BY ALL""").fetchall())
    assert weak[True] < 1.1 < weak[False]
