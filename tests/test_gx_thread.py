"""Great Expectations on its own thread (pipelines/quality/gx_docs.py): the step queues a table and
goes on in SQL; the verdicts, the Data Docs' order and a failure come out as if GX ran in line."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from pipelines.quality.gx_docs import GxRun
from pipelines.quality.suites import Expectation

POSITIVE = Expectation("between", "amount", "not_positive", min_value=0, strict_min=True)
PRESENT = Expectation("not_null", "amount", "missing_value")


def test_verdicts_come_back_per_table_in_the_order_queued(tmp_path):
    run = GxRun(tmp_path / "docs", "run-1")
    good = run.validate("stg_a", pd.DataFrame({"amount": [1.0, 2.0]}), [POSITIVE, PRESENT], rows_total=2)
    bad = run.validate("stg_b", pd.DataFrame({"amount": [1.0, -3.0, None]}), [POSITIVE, PRESENT],
                       rows_total=3)
    index = run.build()
    assert good.result()["success"] and not bad.result()["success"]
    failed = {c["expectation"]: c["unexpected_count"] for c in bad.result()["checks"] if not c["success"]}
    assert failed == {"expect_column_values_to_be_between": 1, "expect_column_values_to_not_be_null": 1}
    assert [v["table"] for v in run.validated] == ["stg_a", "stg_b"]
    page = index.read_text()
    assert page.index("stg_a") < page.index("stg_b")
    assert run.seconds > 0
    assert not any(t.name.startswith("great-expectations") for t in threading.enumerate())


def test_gx_works_beside_the_caller(tmp_path):
    """The caller is not held while GX judges: a queued table is still pending right after."""
    run = GxRun(tmp_path / "docs", "run-2")
    frame = pd.DataFrame({"amount": range(1, 20_001)})
    pending = [run.validate(f"stg_{i}", frame, [POSITIVE, PRESENT], rows_total=len(frame)) for i in range(3)]
    assert not pending[-1].done()
    run.build()
    assert all(f.result()["success"] for f in pending)


def test_a_step_that_stops_early_drops_what_gx_has_queued(tmp_path):
    run = GxRun(tmp_path / "docs", "run-3")
    frame = pd.DataFrame({"amount": [1.0]})
    queued = [run.validate(f"stg_{i}", frame, [POSITIVE], rows_total=1) for i in range(20)]
    run.close()
    assert queued[-1].cancelled()
    assert not any(t.name.startswith("great-expectations") for t in threading.enumerate())


def test_an_error_inside_gx_reaches_the_step(tmp_path):
    run = GxRun(tmp_path / "docs", "run-4")
    broken = run.validate("stg_x", "not a data frame", [POSITIVE], rows_total=1)
    with pytest.raises(Exception):  # noqa: B017 - whatever GX raises, it is not lost on its thread
        broken.result()
    run.close()
