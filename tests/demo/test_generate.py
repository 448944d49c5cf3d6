"""generate_demo: its contract (shapes, types, determinism) and the volumes it promises."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from pipelines.demo import generate_demo
from pipelines.demo.schema import TABLES
from tests.demo.common import AS_OF


def test_systems_and_tables_follow_the_schema(clean):
    assert list(clean) == ["crm", "erp", "scm"]
    for system, tables in clean.items():
        assert set(tables) == set(TABLES[system])
        for name, table in tables.items():
            assert table.schema == TABLES[system][name].arrow_schema, (system, name)
            assert table.num_rows > 0, (system, name)


def test_same_arguments_give_identical_data():
    first = generate_demo(customers=300, as_of=AS_OF, seed=3, dirty_share=0.05)
    second = generate_demo(customers=300, as_of=AS_OF, seed=3, dirty_share=0.05)
    for system, tables in first.items():
        for name, table in tables.items():
            assert table.equals(second[system][name]), (system, name)
    assert first.truth.equals(second.truth)
    assert first.dirty.equals(second.dirty)


def test_another_seed_gives_other_data():
    first = generate_demo(customers=300, as_of=AS_OF, seed=3, dirty_share=0.0)
    other = generate_demo(customers=300, as_of=AS_OF, seed=4, dirty_share=0.0)
    assert not first["erp"]["sales_orders"].equals(other["erp"]["sales_orders"])
    assert not first["crm"]["accounts"]["account_id"].equals(other["crm"]["accounts"]["account_id"])


@pytest.mark.parametrize("customers", [500, 2000])
def test_volume_scales_with_customers(customers, clean):
    systems = clean if customers == 2000 else generate_demo(
        customers=customers, as_of=AS_OF, seed=5, dirty_share=0.0)
    erp = systems["erp"]
    assert erp["customers"].num_rows == customers
    lines = erp["sales_order_lines"].num_rows
    orders = erp["sales_orders"].num_rows
    assert 24 <= lines / customers <= 36  # ~30 lines per customer over three years
    assert 3.0 <= lines / orders <= 4.0
    # About one shipment per shipped order, an invoice per invoiced order.
    assert 0.9 <= systems["scm"]["shipments"].num_rows / orders <= 1.05
    assert 0.9 <= erp["invoices"].num_rows / orders <= 1.0


def test_products_do_not_grow_with_customers(clean):
    small = generate_demo(customers=100, as_of=AS_OF, seed=1, dirty_share=0.0)
    assert 300 <= small["erp"]["products"].num_rows <= clean["erp"]["products"].num_rows <= 3100
    lines = pc.unique(clean["erp"]["products"]["product_line"])
    assert 8 <= len(lines) <= 12


def test_truth_has_one_row_per_erp_customer(clean):
    truth = clean.truth
    assert truth.num_rows == clean["erp"]["customers"].num_rows
    assert truth["customer_no"].equals(clean["erp"]["customers"]["customer_no"])
    for flag in ["is_declining", "is_late_payer", "is_complainer", "is_costly_small",
                 "is_growing"]:
        share = pc.mean(truth[flag].cast("int8")).as_py()
        assert 0.015 <= share <= 0.06, flag
    assert pc.min(truth["value_weight"]).as_py() > 0


@pytest.mark.parametrize("kwargs", [
    {"customers": 0}, {"dirty_share": -0.1}, {"dirty_share": 0.9}, {"seed": -1},
])
def test_bad_arguments_are_refused(kwargs):
    arguments = {"customers": 100, "as_of": AS_OF, "seed": 1, "dirty_share": 0.0} | kwargs
    with pytest.raises(ValueError):
        generate_demo(**arguments)
