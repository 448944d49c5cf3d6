"""The per-night slices are kept for `warehouse.history` and no longer; nothing that reads them changes.

Mining's marts and the tier state gain a slice every night. Maintenance deletes the nights the
policy no longer keeps (every night of a window, then each month's last night for some months),
while the tier state keeps every tier change, the rows tier_history is rebuilt from.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import yaml

from pipelines.config import HistoryConfig, Settings, load_config
from pipelines.history import expired_nights
from pipelines.maintenance import maintain
from pipelines.mining import last_night
from pipelines.nightly import run_nightly, run_step
from pipelines.value import TIER_HISTORY, previous_tiers, tier_changes
from pipelines.warehouse import Warehouse
from tests.tiny_sources import tiny_config, write_tiny_sources

SUNDAY = date(2026, 6, 28)
FIRST = date(2026, 4, 20)  # the first night of the synthetic slices


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def test_every_night_of_the_window_then_each_months_last_night_for_its_months():
    nights = _days(date(2026, 1, 1), SUNDAY)
    policy = HistoryConfig(nightly_days=10, month_end_months=2)
    kept = sorted(set(nights) - set(expired_nights(nights, SUNDAY, policy)))
    # the window (June 18 on), then the month ends of May and April (two months back) and June's
    # own last night, which is in the window anyway
    assert kept == [date(2026, 4, 30), date(2026, 5, 31), *_days(date(2026, 6, 18), SUNDAY)]

    forever = HistoryConfig(nightly_days=10, month_end_months=None)
    kept = sorted(set(nights) - set(expired_nights(nights, SUNDAY, forever)))
    assert kept[:5] == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30),
                        date(2026, 5, 31)]
    assert expired_nights(nights, SUNDAY, forever, month_ends=False) == _days(date(2026, 1, 1),
                                                                               date(2026, 6, 17))


def test_a_month_whose_last_run_failed_keeps_its_last_night_and_later_nights_are_never_touched():
    nights = [date(2026, 5, 3), date(2026, 5, 29), date(2026, 6, 1), date(2026, 7, 4)]  # 5/30, 5/31 missing
    expired = expired_nights(nights, SUNDAY, HistoryConfig(nightly_days=7, month_end_months=3))
    assert expired == [date(2026, 5, 3), date(2026, 6, 1)]  # May 29 is May's last; July 4 is after
    assert expired_nights(nights, SUNDAY, HistoryConfig(nightly_days=7, month_end_months=0)) == [
        date(2026, 5, 3), date(2026, 5, 29), date(2026, 6, 1)]


def _tier_state(night: date, customers: int) -> pa.Table:
    """A night of the tier state in which customer c changed tier on the nights of day-of-year % 7 == c."""
    ids = [f"C{c}" for c in range(customers)]
    moved = [night.timetuple().tm_yday % 7 == c for c in range(customers)]
    return pa.table({
        "run_id": [f"build-{night}"] * customers,
        "as_of_date": pa.array([night] * customers, pa.date32()),
        "customer_id": ids,
        "tier": ["Gold" if m else "Silver" for m in moved],
        "ranked_tier": ["Gold"] * customers,
        "previous_tier": pa.array([None if night == FIRST else "Silver"] * customers, pa.string()),
        "tier_since": pa.array([night] * customers, pa.date32()),
        "tier_reason": ["rule"] * customers,
        "pending_tier": pa.array([None] * customers, pa.string()),
        "pending_runs": pa.array([0] * customers, pa.int64()),
        "tier_measure": [1.0] * customers,
        "tier_boundary": [2.0] * customers,
    })


def _tiny_with_history(folder, **history) -> tuple[Path, Settings]:
    """The tiny sources and their kam.yaml with `warehouse.history` set."""
    write_tiny_sources(folder)
    config = tiny_config(folder)
    data = yaml.safe_load(config.read_text())
    data["warehouse"]["history"] = history
    config.write_text(yaml.safe_dump(data))
    return config, load_config(config)


def test_maintenance_deletes_expired_slices_and_keeps_every_tier_change(tmp_path):
    _, settings = _tiny_with_history(tmp_path, nightly_days=14, month_end_months=1)
    warehouse = Warehouse(settings.warehouse_path)
    nights = _days(FIRST, SUNDAY)
    for night in nights:
        warehouse.write(TIER_HISTORY, _tier_state(night, 5), replace_where=f"as_of_date = '{night}'")
        segment = pa.table({"as_of_date": pa.array([night] * 3, pa.date32()),
                            "customer_id": ["C0", "C1", "C2"],
                            "segment_id": pa.array([night.day % 3] * 3, pa.int64()),
                            "segment_name": ["s"] * 3})
        warehouse.write("customer_segment", segment, replace_where=f"as_of_date = '{night}'")
    state_before = warehouse.read(TIER_HISTORY)
    names = ["Gold", "Silver"]
    history_before = tier_changes(state_before, SUNDAY, "revenue_12m", names)
    assert history_before.num_rows > 40  # the test means something: changes in every month

    result = maintain(settings, SUNDAY, force=True)

    window = set(_days(SUNDAY - timedelta(days=14), SUNDAY))
    segments = set(warehouse.read("customer_segment", ["as_of_date"]).column("as_of_date").to_pylist())
    assert segments == window | {date(2026, 5, 31)}  # and none of April's nights
    state = warehouse.read(TIER_HISTORY)
    old = [r for r in state.to_pylist() if r["as_of_date"] not in window]
    assert old and all(r["tier"] != r["previous_tier"] for r in old)  # only the changes stay
    assert result.details["history_pruned"] == {
        "customer_segment": 3 * (len(nights) - len(window) - 1),
        TIER_HISTORY: state_before.num_rows - state.num_rows,
    }
    assert "rows of nights older than 14 days" in " ".join(result.notes)
    assert tier_changes(state, SUNDAY, "revenue_12m", names).equals(history_before)
    # what the next night reads: the latest earlier slices, whole
    monday = SUNDAY + timedelta(days=1)
    assert last_night(warehouse, monday).to_dict("records") == [
        {"customer_id": c, "segment_id": SUNDAY.day % 3, "segment_name": "s"} for c in ("C0", "C1", "C2")]

    class _AsOf:  # previous_tiers reads the session's warehouse and as-of date only
        def __init__(self, as_of: date) -> None:
            self.warehouse, self.as_of = warehouse, as_of

    assert len(previous_tiers(_AsOf(monday))) == 5
    assert maintain(settings, SUNDAY, force=True).details["history_pruned"] == {}  # nothing left


def test_the_night_after_pruning_builds_the_same_marts_as_without_it(tmp_path):
    steps = ["extract", "stage", "build", "maintain"]
    config, settings = _tiny_with_history(tmp_path, nightly_days=1, month_end_months=0)
    for night in _days(SUNDAY - timedelta(days=3), SUNDAY - timedelta(days=1)):
        run_nightly(night, settings, steps=steps)
    unpruned = tmp_path / "unpruned"
    shutil.copytree(settings.warehouse_path, unpruned / "warehouse")
    shutil.copy(config, unpruned / "kam.yaml")
    for name in ("crm.db", "erp.db", "scm.db"):
        shutil.copy(tmp_path / name, unpruned / name)
    pruned = {r.step: r for r in run_nightly(SUNDAY, settings, steps=steps)}["maintain"]
    assert set(pruned.details["history_pruned"]) == {TIER_HISTORY}
    warehouse = Warehouse(settings.warehouse_path)
    nights = set(warehouse.read(TIER_HISTORY, ["as_of_date"]).column("as_of_date").to_pylist())
    assert nights == {SUNDAY - timedelta(days=1), SUNDAY}  # no tier changed on the tiny nights

    other = load_config(unpruned / "kam.yaml")
    run_nightly(SUNDAY, other, steps=steps[:-1])
    monday = SUNDAY + timedelta(days=1)
    run_step("build", monday, settings)
    run_step("build", monday, other)
    for table in ("customer_value", "crm_account_tier", "tier_history"):
        mine, theirs = Warehouse(other.warehouse_path).read(table), warehouse.read(table)
        assert theirs.sort_by("customer_id").equals(mine.sort_by("customer_id")), table
