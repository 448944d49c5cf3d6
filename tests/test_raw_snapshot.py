"""A raw table's snapshot with a key reconciliation in it, row by row against its definition.

The definition (pipelines/staging.py, `prepare_snapshot`): the last full batch plus the increments
after it, the newest batch's rows winning per key; rows older than a key reconciliation whose key
it did not see are deletions; rows without a key stay. These batches are written by hand so the
expected rows can be listed: one of each case a Sunday meets.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa

from pipelines.batches import Batch, snapshot
from pipelines.config import load_config
from pipelines.duckdb_session import Session
from pipelines.extract import BATCH_ID, EXTRACT_DATE
from pipelines.staging import dropped_by_reconciliation, prepare_snapshot, typed_keys
from pipelines.warehouse import Warehouse

REPO = Path(__file__).resolve().parent.parent
RAW = "raw_crm__cases"
COLUMNS = ["case_id", "account_id", "case_type", "priority", "status", "opened_at", "closed_at",
           "satisfaction_score", "last_modified"]

# batch id, extraction date, kind, rows as (case_id, status)
BATCHES = [
    ("2026-01-01.v000000", "2026-01-01", "full",
     [("c1", "Open"), ("c2", "Open"), ("c3", "Open"), ("c4", "Open"), ("c5", "Open"), ("c5", "Dup"),
      (None, "No key")]),
    ("2026-01-02.v000001", "2026-01-02", "incremental", [("c2", "Closed"), ("c6", "Open")]),
    # the reconciliation sees c1, c2 and c6 (and one row without a key): c3, c4 and c5 were deleted
    ("2026-01-03.v000002", "2026-01-03", "keys", [("c1", None), ("c2", None), ("c6", None), (None, None)]),
    # c3 comes back after the reconciliation; c7 is new
    ("2026-01-04.v000003", "2026-01-04", "incremental", [("c3", "Reopened"), ("c7", "Open")]),
]


def _raw_table(warehouse: Warehouse, batches: list = BATCHES) -> list[Batch]:
    """Write the batches (id, extraction date, kind, rows as (case_id, status)) to the raw table."""
    written = []
    for version, (batch_id, day, kind, rows) in enumerate(batches):
        data = {c: [None] * len(rows) for c in COLUMNS}
        data["case_id"] = [k for k, _ in rows]
        data["status"] = [s for _, s in rows]
        table = pa.table({**{c: pa.array(v, pa.string()) for c, v in data.items()},
                          BATCH_ID: pa.array([batch_id] * len(rows)),
                          EXTRACT_DATE: pa.array([day] * len(rows))})
        warehouse.append(RAW, table, partition_by=[EXTRACT_DATE])
        written.append(Batch(RAW, batch_id, day, kind, len(rows), version))
    return written


def test_the_snapshot_drops_only_the_older_rows_of_keys_the_reconciliation_did_not_see(tmp_path):
    settings = load_config(REPO / "kam.yaml")
    mapping = settings.config.entities["service_case"]
    warehouse = Warehouse(tmp_path / "warehouse")
    snap = snapshot(_raw_table(warehouse))
    assert snap.keys.batch_id == BATCHES[2][0]
    as_of = date(2026, 1, 4)
    with Session(warehouse, as_of) as session:
        rows = prepare_snapshot(session, "service_case", mapping, as_of, snap)
        view = rows.view(session, "_snapshot")
        got = sorted(session.con.execute(f'SELECT case_id, status, {BATCH_ID} FROM "{view}"').fetchall(),
                     key=str)
        assert got == sorted([
            ("c1", "Open", BATCHES[0][0]),  # seen by the reconciliation
            ("c2", "Closed", BATCHES[1][0]),  # the newest row of its key
            ("c6", "Open", BATCHES[1][0]),
            ("c3", "Reopened", BATCHES[3][0]),  # deleted, then back after the reconciliation
            ("c7", "Open", BATCHES[3][0]),
            (None, "No key", BATCHES[0][0]),  # no identity to reconcile: stays
        ], key=str)
        # the deleted keys, c4 and both rows of c5, are gone; c3's older row too

        # A re-check of a subset of the full batch (a merge's pull) drops the same rows of it.
        session.con.execute(f"""CREATE TEMP VIEW _some AS SELECT * FROM "{rows.full}"
                                WHERE case_id IN ('c1', 'c4', 'c5')""")
        pulled = rows.view(session, "_pulled", full_rows="_some")
        from_full = session.con.execute(
            f"SELECT case_id FROM \"{pulled}\" WHERE {BATCH_ID} = '{BATCHES[0][0]}'").fetchall()
        assert from_full == [("c1",)]
        assert session.count("_pulled") == 1 + 4  # and the newest increment rows, as in the whole view

        # What staging re-checks on the reconciliation night: every key with a row dropped.
        typed = typed_keys("service_case", mapping)
        dropped = dropped_by_reconciliation(rows, typed, ["_k0"])
        keys = sorted(r[0] for r in session.con.execute(f"SELECT _k0 FROM ({dropped})").fetchall())
        assert keys == ["c3", "c4", "c5", "c5"]


# Tonight's batch re-reads rows an earlier night already brought (the look-back) next to real changes.
REREAD_BATCHES = [
    ("2026-02-01.v000000", "2026-02-01", "full", [("base", "Open"), ("c2", "Open")]),
    ("2026-02-02.v000001", "2026-02-02", "incremental",
     [("same", "Open"), ("moved", "Open"), ("twice", "Open"), ("twice", "Open"), ("back", "Open"),
      ("nulls", None), ("one", "Open"), (None, "No key")]),
    ("2026-02-03.v000002", "2026-02-03", "incremental", [("back", "Closed")]),
    ("2026-02-04.v000003", "2026-02-04", "incremental",
     [("same", "Open"),  # re-read, unchanged
      ("moved", "Closed"),  # changed
      ("twice", "Open"),  # one row where there were two
      ("one", "Open"), ("one", "Open"),  # two rows where there was one
      ("back", "Open"),  # equals an older increment's row, not the newest one's
      ("base", "Open"),  # last seen in the base batch: not compared
      ("nulls", None),  # unchanged, NULLs and all
      ("new", "Open"),
      (None, "No key")]),  # unchanged, and without a key
]


def test_a_merge_re_checks_only_the_identities_tonight_changed(tmp_path):
    settings = load_config(REPO / "kam.yaml")
    mapping = settings.config.entities["service_case"]
    warehouse = Warehouse(tmp_path / "warehouse")
    snap = snapshot(_raw_table(warehouse, REREAD_BATCHES))
    tonight = REREAD_BATCHES[-1][0]
    as_of = date(2026, 2, 4)
    with Session(warehouse, as_of) as session:
        rows = prepare_snapshot(session, "service_case", mapping, as_of, snap, tonight={tonight})
        changed = rows.changed_rows(session)
        got = sorted(session.con.execute(f"SELECT case_id, status FROM ({changed})").fetchall(), key=str)
        assert got == sorted([("moved", "Closed"), ("twice", "Open"), ("one", "Open"), ("one", "Open"),
                              ("back", "Open"), ("base", "Open"), ("new", "Open")], key=str)
        # The snapshot itself is the one every night gets: tonight's rows win for their keys.
        view = rows.view(session, "_snapshot")
        snapshot_rows = session.con.execute(f'SELECT case_id, status, {BATCH_ID} FROM "{view}"').fetchall()
        assert sorted((r[:2] for r in snapshot_rows if r[2] == tonight), key=str) == sorted(
            REREAD_BATCHES[-1][3], key=str)
        assert ("c2", "Open", REREAD_BATCHES[0][0]) in snapshot_rows

        # Without tonight's batches named, the snapshot is laid out as before and nothing is compared.
        plain = prepare_snapshot(session, "service_case", mapping, as_of, snap)
        assert plain.earlier is None
        assert sorted(session.con.execute(f'SELECT * FROM "{plain.view(session, "_plain")}"').fetchall(),
                      key=str) == sorted(session.con.execute(f'SELECT * FROM "{view}"').fetchall(), key=str)


def test_an_identity_last_seen_before_a_key_reconciliation_counts_as_changed(tmp_path):
    """The reconciliation may have dropped it, so tonight's identical row can bring it back."""
    settings = load_config(REPO / "kam.yaml")
    mapping = settings.config.entities["service_case"]
    warehouse = Warehouse(tmp_path / "warehouse")
    batches = [
        ("2026-03-01.v000000", "2026-03-01", "full", [("kept", "Open")]),
        ("2026-03-02.v000001", "2026-03-02", "incremental", [("gone", "Open"), ("seen", "Open")]),
        ("2026-03-03.v000002", "2026-03-03", "keys", [("kept", None), ("seen", None)]),
        ("2026-03-04.v000003", "2026-03-04", "incremental", [("after", "Open")]),
        ("2026-03-05.v000004", "2026-03-05", "incremental",
         [("gone", "Open"), ("seen", "Open"), ("after", "Open")]),
    ]
    snap = snapshot(_raw_table(warehouse, batches))
    as_of = date(2026, 3, 5)
    with Session(warehouse, as_of) as session:
        rows = prepare_snapshot(session, "service_case", mapping, as_of, snap, tonight={batches[-1][0]})
        changed = rows.changed_rows(session)
        got = sorted(k for (k,) in session.con.execute(f"SELECT case_id FROM ({changed})").fetchall())
        assert got == ["gone", "seen"]  # "after" was re-read unchanged since the reconciliation
        view = rows.view(session, "_snapshot")
        assert sorted(k for (k,) in session.con.execute(f'SELECT case_id FROM "{view}"').fetchall()) == [
            "after", "gone", "kept", "seen"]
