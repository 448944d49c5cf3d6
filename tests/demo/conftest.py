"""Demo data sets shared by the tests in this folder, generated once per session.

Small on purpose (the machine has two cores): 2,000 customers are enough for the planted patterns
to show with a clear margin, and take about a second to generate.
"""

from __future__ import annotations

import pytest

from pipelines.demo import generate_demo
from tests.demo.common import AS_OF, SEED, query


@pytest.fixture(scope="session")
def clean():
    return generate_demo(customers=2000, as_of=AS_OF, seed=SEED, dirty_share=0.0)


@pytest.fixture(scope="session")
def clean_sql(clean):
    con = query(clean)
    # Net value of each non-cancelled order line, with its customer and order date.
    con.execute("""
        CREATE VIEW line_value AS
        SELECT o.customer_no, strptime(o.order_date, '%Y%m%d')::DATE AS order_date,
               l.product_no, l.quantity * l.unit_price * (1 - l.discount_pct) AS net
        FROM erp_sales_order_lines l JOIN erp_sales_orders o USING (order_no)
        WHERE o.status <> 'CANCELLED'
    """)
    con.execute(f"""
        CREATE VIEW customer_revenue AS
        SELECT t.*,
               coalesce(sum(v.net) FILTER (WHERE v.order_date > DATE '{AS_OF}' - 365), 0) AS last_12m,
               coalesce(sum(v.net) FILTER (WHERE v.order_date <= DATE '{AS_OF}' - 365
                                           AND v.order_date > DATE '{AS_OF}' - 730), 0) AS prior_12m,
               coalesce(sum(v.net) FILTER (WHERE v.order_date <= DATE '{AS_OF}' - 365), 0)
                   AS years_1_2
        FROM truth t LEFT JOIN line_value v USING (customer_no)
        GROUP BY ALL
    """)
    return con


@pytest.fixture(scope="session")
def dirty():
    return generate_demo(customers=1000, as_of=AS_OF, seed=SEED, dirty_share=0.05)


@pytest.fixture(scope="session")
def dirty_sql(dirty):
    return query(dirty)
