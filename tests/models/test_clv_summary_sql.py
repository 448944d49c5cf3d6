"""The build's CLV summary in SQL (transforms/marts/clv_summary.sql) against the pandas reference
(models/clv/summary.py) on the CDNOW transactions: same customers, same figures."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from models.clv import customer_summary, purchases_between
from pipelines.duckdb_session import sql_file

CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"


@pytest.fixture(scope="module")
def days(cdnow) -> pd.DataFrame:
    """CDNOW as clv_transactions holds it: one row per customer and purchase day, with a margin
    that is unknown (NULL) on some days."""
    frame = cdnow.groupby(["customer_id", "date"], as_index=False)["amount"].sum()
    frame["amount"] = frame["amount"].round(2)
    frame["margin"] = (frame["amount"] * 0.3).round(2).where(frame.index % 7 != 0)
    frame["date"] = frame["date"].dt.date
    return frame


def _sql_summary(days: pd.DataFrame, end: str, as_of: str) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("clv_transactions_frame", days)
    con.execute("CREATE TABLE clv_transactions AS SELECT customer_id, date, amount, margin "
                "FROM clv_transactions_frame WHERE date <= DATE '" + as_of + "'")
    con.execute(f"SET VARIABLE summary_end = DATE '{end}'")
    return con.execute(sql_file("marts", "clv_summary")).df().set_index("customer_id")


def test_sql_summary_equals_the_pandas_reference(days):
    sql = _sql_summary(days, CALIBRATION_END, HOLDOUT_END)
    reference = customer_summary(days, CALIBRATION_END, amount="amount")
    assert len(sql) == len(reference) == 2357
    assert list(sql.index) == sorted(reference.index)
    reference = reference.loc[sql.index]
    assert (sql["frequency"].to_numpy() == reference["frequency"].to_numpy()).all()
    for column in ("recency", "T", "monetary"):
        np.testing.assert_allclose(sql[column], reference[column], rtol=1e-12, atol=1e-9)
    assert (pd.to_datetime(sql["first_purchase"]) == reference["first_purchase"]).all()
    assert (pd.to_datetime(sql["last_purchase"]) == reference["last_purchase"]).all()

    calibration = days[pd.to_datetime(days["date"]) <= CALIBRATION_END]
    first = calibration.sort_values("date").groupby("customer_id")["amount"].first()
    np.testing.assert_allclose(sql["first_amount"], first.loc[sql.index], rtol=1e-12)
    known = calibration[calibration["margin"].notna()].groupby("customer_id")[["margin", "amount"]].sum()
    share = (known["margin"] / known["amount"].where(known["amount"] > 0)).reindex(sql.index)
    np.testing.assert_allclose(sql["margin_share"], share, rtol=1e-12, equal_nan=True)
    assert sql["margin_share"].isna().sum() > 0  # some customers' only days have no known margin

    later = purchases_between(days, CALIBRATION_END, HOLDOUT_END).reindex(sql.index, fill_value=0)
    assert (sql["later_purchases"].to_numpy() == later.to_numpy()).all() and later.sum() > 0


def test_up_to_the_as_of_date_nothing_is_later(days):
    sql = _sql_summary(days, HOLDOUT_END, HOLDOUT_END)
    assert (sql["later_purchases"] == 0).all()
    assert sql["T"].ge(sql["recency"]).all()
    assert (sql.loc[sql["frequency"] == 0, "monetary"] == 0).all()
