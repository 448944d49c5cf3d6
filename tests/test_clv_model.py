"""The week's CLV model: the nights after a refit score tonight's customers with the refit night's
BG/NBD and Gamma-Gamma parameters and write its holdout check again; a re-run changes nothing; a
changed configuration, or refitting every night, fits again."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipelines import clv_model
from pipelines.config import load_config
from pipelines.duckdb_session import Session, sql_file
from pipelines.marts import build, expose_staging
from pipelines.nightly import run_nightly
from pipelines.value import clv_scores, clv_summary
from pipelines.warehouse import Warehouse
from tests.conftest import DEMO_AS_OF

AS_OF = date.fromisoformat(DEMO_AS_OF)  # a Sunday: the default refit night
MONDAY = AS_OF + timedelta(days=1)


def _summary(settings, warehouse: Warehouse, day: date) -> pd.DataFrame:
    with Session(warehouse, day) as session:
        expose_staging(session, settings)
        session.materialize("clv_transactions", sql_file("marts", "clv_transactions"))
        return clv_summary(session, day)


def _table(warehouse: Warehouse, name: str) -> pd.DataFrame:
    return warehouse.read(name).to_pandas()


def test_the_nights_after_a_refit_score_with_its_parameters(demo_workspace):
    settings = load_config(demo_workspace.config)
    warehouse = Warehouse(settings.warehouse_path)
    steps = ["extract", "stage", "build"]
    sunday = {r.step: r for r in run_nightly(AS_OF, settings, steps=steps)}["build"].details["clv"]
    sunday_check = _table(warehouse, "clv_holdout")
    monday = {r.step: r for r in run_nightly(MONDAY, settings, steps=steps)}["build"].details["clv"]
    assert "kept_from" not in sunday and monday["kept_from"] == AS_OF.isoformat()
    assert monday["bgnbd"] == sunday["bgnbd"] and monday["gamma_gamma"] == sunday["gamma_gamma"]
    assert [m["fit_date"] for m in warehouse.read(clv_model.MODEL_TABLE).to_pylist()] == [AS_OF]

    # Monday's figures are Sunday's parameters applied to Monday's histories, not a fit of Monday's
    summary = _summary(settings, warehouse, MONDAY)
    kept = clv_model.kept_model(warehouse, MONDAY, settings.config.clv)
    expected, _ = clv_scores(summary, settings.config.clv, kept)
    refitted, refit_info = clv_scores(summary, settings.config.clv)
    assert refit_info["bgnbd"] != sunday["bgnbd"]  # Monday's own data would have moved them
    values = _table(warehouse, "customer_value").set_index("customer_id")
    for column in ("clv", "probability_alive", "expected_purchases"):
        np.testing.assert_array_equal(values.loc[expected.index, column].astype(float).to_numpy(),
                                      expected[column].astype(float).to_numpy(), err_msg=column)
    assert not np.allclose(refitted["clv"].to_numpy(float), expected["clv"].to_numpy(float))

    # the holdout check is the fit night's, dated tonight
    monday_check = _table(warehouse, "clv_holdout")
    assert set(monday_check["as_of_date"]) == {MONDAY} and set(sunday_check["as_of_date"]) == {AS_OF}
    def by_bucket(frame: pd.DataFrame) -> pd.DataFrame:  # a Delta table's rows come in no set order
        return frame.drop(columns="as_of_date").sort_values("bucket", ignore_index=True)

    pd.testing.assert_frame_equal(by_bucket(monday_check), by_bucket(sunday_check))
    assert list(monday_check.columns) == list(sunday_check.columns)

    # a re-run of Monday gives the same marts
    keys = {"customer_value": "customer_id", "clv_holdout": "bucket"}
    before = {t: _table(warehouse, t).sort_values(k, ignore_index=True) for t, k in keys.items()}
    build(settings, MONDAY)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(_table(warehouse, name).sort_values(keys[name], ignore_index=True),
                                      frame, obj=name)

    # refitting every night, or a changed clv section, fits on Monday
    for update in ({"refit_weekday": None}, {"horizon_months": 6}):
        changed = replace(settings, config=settings.config.model_copy(
            update={"clv": settings.config.clv.model_copy(update=update)}))
        info = build(changed, MONDAY).details["clv"]
        assert "kept_from" not in info and info["bgnbd"] == refit_info["bgnbd"], update
    assert MONDAY in {m["fit_date"] for m in warehouse.read(clv_model.MODEL_TABLE).to_pylist()}
