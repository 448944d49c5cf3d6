"""Can CLV be trusted on this data? Fit on a calibration window, predict a holdout, compare.

The split is relative to the run's as-of date: the holdout is the last `holdout_weeks` up to as-of,
the calibration everything before. Metrics are by calibration frequency bucket (the calibration plot
of Fader, Hardie & Lee 2005, Fig. 4: conditional expectations against what happened) and in total.
A model that is off by 30% in total, or that misses the heavy buyers, shows it here before anyone
acts on its CLV figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from models.clv.bgnbd import BetaGeoModel
from models.clv.summary import customer_summary, purchases_between


@dataclass(frozen=True)
class HoldoutResult:
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp
    model: BetaGeoModel
    per_customer: pd.DataFrame  # frequency, recency, T, predicted, actual
    by_bucket: pd.DataFrame  # the calibration plot's data
    totals: dict[str, float]


def frequency_buckets(frequency: np.ndarray, top: int = 7) -> np.ndarray:
    """Labels '0', '1', ..., '{top}+' for calibration repeat purchases."""
    f = np.asarray(frequency, dtype=int)
    return np.where(f >= top, f"{top}+", f.astype(str))


def holdout_evaluation(transactions: pd.DataFrame, as_of: date | str, holdout_weeks: float, *,
                       customer: str = "customer_id", when: str = "date",
                       top_bucket: int = 7) -> HoldoutResult:
    """Fit BG/NBD on purchases up to as_of - holdout_weeks, predict the remaining weeks, compare.

    Only customers whose first purchase falls in the calibration window are scored: newcomers in the
    holdout have no history to predict from, and counting them would flatter or punish the model
    for something it was never asked.
    """
    holdout_end = pd.Timestamp(as_of)
    calibration_end = holdout_end - pd.Timedelta(days=round(holdout_weeks * 7))
    cal = customer_summary(transactions, calibration_end, customer=customer, when=when, amount=None)
    actual = purchases_between(transactions, calibration_end, holdout_end, customer=customer, when=when)
    return evaluate_holdout(cal, actual.reindex(cal.index, fill_value=0).to_numpy(dtype=float),
                            calibration_end, holdout_end, top_bucket=top_bucket)


def evaluate_holdout(calibration: pd.DataFrame, actual: np.ndarray, calibration_end: date | str,
                     holdout_end: date | str, *, top_bucket: int = 7) -> HoldoutResult:
    """The comparison itself, from a calibration summary (frequency, recency, T per customer, as
    customer_summary gives it up to `calibration_end`) and each customer's actual purchase days in
    (calibration_end, holdout_end]: the build computes both in SQL."""
    calibration_end, holdout_end = pd.Timestamp(calibration_end), pd.Timestamp(holdout_end)
    cal = calibration
    if len(cal) == 0:
        raise ValueError(f"no purchases up to the calibration end {calibration_end.date()}")
    model = BetaGeoModel().fit(cal["frequency"], cal["recency"], cal["T"])
    horizon = (holdout_end - calibration_end).days / 7.0
    predicted = model.conditional_expected_number_of_purchases_up_to_time(
        horizon, cal["frequency"], cal["recency"], cal["T"])
    per = cal[["frequency", "recency", "T"]].assign(predicted=predicted,
                                                    actual=np.asarray(actual, dtype=float))
    per["bucket"] = frequency_buckets(per["frequency"].to_numpy(), top_bucket)
    by_bucket = per.groupby("bucket", sort=False).agg(
        customers=("actual", "size"), actual_mean=("actual", "mean"), predicted_mean=("predicted", "mean"),
        actual_total=("actual", "sum"), predicted_total=("predicted", "sum"),
    )
    order = [str(i) for i in range(top_bucket)] + [f"{top_bucket}+"]
    by_bucket = by_bucket.reindex([b for b in order if b in by_bucket.index])
    by_bucket["error"] = by_bucket["predicted_mean"] - by_bucket["actual_mean"]
    by_bucket = by_bucket.rename_axis("bucket").reset_index()
    pred, act = per["predicted"].to_numpy(), per["actual"].to_numpy()
    correlation = float(np.corrcoef(pred, act)[0, 1]) if len(per) > 1 and act.std() > 0 else float("nan")
    totals = {
        "customers": float(len(per)),
        "calibration_repeat_purchases": float(per["frequency"].sum()),
        "actual": float(act.sum()),
        "predicted": float(pred.sum()),
        "error_share": float((pred.sum() - act.sum()) / act.sum()) if act.sum() > 0 else float("nan"),
        "correlation": correlation,
        "mae": float(np.mean(np.abs(pred - act))),
        "rmse": float(np.sqrt(np.mean((pred - act) ** 2))),
    }
    return HoldoutResult(calibration_end, holdout_end, model, per, by_bucket, totals)
