"""What the other users get from a night: the BI DuckDB file (read by another process while a run
writes), the sales-ops exports and the run report opened in a real headless Chromium."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pytest

from pipelines.config import load_config
from pipelines.nightly import run_nightly
from pipelines.warehouse import Warehouse
from tests.browser import dump_dom, screenshot
from tests.png import colour_counts, read_png

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 11, 22)
NEXT = AS_OF + timedelta(days=1)


@pytest.fixture(scope="module")
def demo_night(tmp_path_factory, _demo_sqlite_files):
    """The demo, one full night run (all steps), in a folder of its own for this module."""
    root = tmp_path_factory.mktemp("outputs")
    (root / "demo").mkdir()
    for db in _demo_sqlite_files.glob("*.db"):
        shutil.copy(db, root / "demo" / db.name)
    shutil.copy(ROOT / "kam.yaml", root / "kam.yaml")
    settings = load_config(root / "kam.yaml")
    results = run_nightly(AS_OF, settings)
    return root, settings, results


def _second_night(settings) -> None:
    """The marts of the next night (the tests that read them pass alone too): built once per module."""
    if NEXT not in _NIGHTS_BUILT:
        run_nightly(NEXT, settings, steps=["build", "mine"])
        _NIGHTS_BUILT.add(NEXT)


_NIGHTS_BUILT: set[date] = set()


READER = """
import json, sys, time
from pathlib import Path
import duckdb

database, stop, out = sys.argv[1:]
with open(out, "w") as log:
    while not Path(stop).exists():
        try:
            con = duckdb.connect(database, read_only=True)
            row = con.execute('''SELECT
                (SELECT count(*) FROM customer_value), (SELECT count(*) FROM whale_curve),
                (SELECT count(DISTINCT as_of_date) FROM customer_value),
                (SELECT min(as_of_date)::VARCHAR FROM customer_value),
                (SELECT min(as_of_date)::VARCHAR FROM whale_curve),
                (SELECT min(as_of_date)::VARCHAR FROM crm_account_tier),
                (SELECT count(*) FROM crm_account_tier),
                (SELECT sum(customers) FROM (SELECT count(*) AS customers FROM customer_value GROUP BY tier))
            ''').fetchone()
            con.close()
            log.write(json.dumps({"row": list(row)}) + "\\n")
        except Exception as exc:  # recorded, and the test fails on it
            log.write(json.dumps({"error": repr(exc)}) + "\\n")
        log.flush()
        time.sleep(0.05)
"""


def test_the_bi_file_read_by_another_process_during_a_nightly_run_is_complete_and_consistent(demo_night):
    root, settings, _ = demo_night
    database = settings.bi_database_path
    assert database.exists()
    stop, out = root / "stop-reader", root / "reads.jsonl"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(database), str(stop), str(out)])
    try:
        time.sleep(1.0)
        run_nightly(NEXT, settings, steps=["build", "mine"])  # rewrites the marts, refreshes the file
        _NIGHTS_BUILT.add(NEXT)
        time.sleep(1.0)
    finally:
        stop.touch()
        reader.wait(timeout=60)
    reads = [json.loads(line) for line in out.read_text().splitlines()]
    errors = [r["error"] for r in reads if "error" in r]
    assert not errors, errors[:3]
    rows = [r["row"] for r in reads]
    assert len(rows) >= 20
    for values, whales, dates, value_day, whale_day, tier_day, accounts, by_tier in rows:
        assert values == whales == by_tier and values > 1000  # every customer, in both marts
        assert dates == 1 and value_day == whale_day == tier_day  # one night, the same in every view
        assert accounts > 1000
    seen = {r[3] for r in rows}
    assert seen == {AS_OF.isoformat(), NEXT.isoformat()}  # it read before and after the switch


def test_exports_per_owner_and_for_everyone_in_csv_and_excel(demo_night):
    from pipelines.exports import write_exports

    root, settings, _ = demo_night
    _second_night(settings)
    written = write_exports(settings, NEXT)
    folder = settings.exports_path / NEXT.isoformat()
    with open(folder / "all_accounts.csv", newline="") as f:
        everyone = list(csv.DictReader(f))
    assert len(everyone) == written["all_accounts"] > 1000
    owners = {r["owner"] for r in everyone}
    assert len(owners) >= 5 and len(written) == len(owners) + 1
    assert sum(n for stem, n in written.items() if stem.startswith("by_owner/")) == len(everyone)
    for column in ("tier", "changed_since_last_run", "previous_tier", "alerts", "next_best",
                   "next_best_because"):
        assert column in everyone[0]
    assert any(r["next_best"] for r in everyone) and any(r["alerts"] for r in everyone)
    # offers in rank order, alerts in alphabetical order: as the marts hold them tonight
    warehouse = Warehouse(settings.warehouse_path)
    offers, alerts = {}, {}
    for row in sorted(warehouse.read("account_next_best").to_pylist(), key=lambda r: r["rank"]):
        if row["as_of_date"] == NEXT:
            offers.setdefault(row["customer_id"], []).append((row["product_line"], row["because"]))
    for row in warehouse.read("customer_alert").to_pylist():
        if row["as_of_date"] == NEXT:
            alerts.setdefault(row["customer_id"], []).append(row["alert"])
    assert any(len(o) > 1 for o in offers.values()) and any(len(a) > 1 for a in alerts.values())
    for r in everyone:
        theirs = offers.get(r["customer_id"], [])
        assert r["next_best"] == "; ".join(line for line, _ in theirs), r
        assert r["next_best_because"] == " | ".join(f"{line}: {why}" for line, why in theirs), r
        assert r["alerts"] == "; ".join(sorted(alerts.get(r["customer_id"], []))), r
    for stem in (s for s in written if s.startswith("by_owner/")):  # written in parallel, by row range
        with open(folder / f"{stem}.csv", newline="") as f:
            theirs = list(csv.DictReader(f))
        assert theirs == [r for r in everyone if r["owner"] == theirs[0]["owner"]], stem
    stem = next(s for s in written if s.startswith("by_owner/"))
    book = openpyxl.load_workbook(folder / f"{stem}.xlsx", read_only=True)
    sheet_rows = list(book["accounts"].iter_rows(values_only=True))
    with open(folder / f"{stem}.csv", newline="") as f:
        mine = list(csv.DictReader(f))
    assert len(sheet_rows) == len(mine) + 1 == written[stem] + 1
    assert [str(c) for c in sheet_rows[0]] == list(mine[0])
    assert {r["owner"] for r in mine} == {sheet_rows[1][0]}  # one owner per file
    assert [str(c) if c is not None else "" for c in sheet_rows[1]][:4] == list(mine[0].values())[:4]
    everyone_book = openpyxl.load_workbook(folder / "all_accounts.xlsx", read_only=True)
    assert sum(1 for _ in everyone_book["accounts"].iter_rows()) == len(everyone) + 1

    # Above outputs.excel_max_rows the everyone workbook is not written; the CSV and owners' books are.
    outputs = settings.config.outputs.model_copy(update={"excel_max_rows": len(everyone) - 1})
    capped = dataclasses.replace(settings, config=settings.config.model_copy(update={"outputs": outputs}))
    assert write_exports(capped, NEXT) == written
    assert not (folder / "all_accounts.xlsx").exists() and (folder / "all_accounts.csv").exists()
    assert len(list((folder / "by_owner").glob("*.xlsx"))) == len(owners)


def test_the_run_report_opens_offline_in_headless_chromium_with_its_charts_drawn(demo_night):
    from pipelines.report import COLOURS, write_run_report

    root, settings, results = demo_night
    path = write_run_report(settings, AS_OF, None)
    page = path.read_text()
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert "<script" not in page  # self-contained: nothing to fetch, nothing to run
    assert (settings.reports_path / "latest.html").read_text() == page

    profile = root / "chromium-profile"
    dom = dump_dom(profile, path.as_uri())
    for chart in ("pyramid", "lorenz", "whale", "clv", "calibration", "segments", "timings"):
        assert f'data-chart="{chart}"' in dom, chart
    for section in ("Tier migration since the last run", "Data quality", "Step timings"):
        assert section in dom
    shot = screenshot(profile, path.as_uri(), root / "report.png", "1200,3000")
    width, height, rows = read_png(shot)
    assert (width, height) == (1200, 3000)
    counts = colour_counts(rows)
    drawn = {colour: counts[colour] for colour in COLOURS[:5]}
    assert all(n > 1000 for n in drawn.values()), drawn  # bars and curves painted in each colour
    assert counts["#ffffff"] < 0.97 * width * height  # not a blank page
    kept = ROOT / "benchmarks" / "out"
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, kept / "run_report_demo.png")


REMOTE_ASSET = re.compile(r"""<script[^>]*\ssrc=["']https?:|<link[^>]*\shref=["']https?:""", re.I)


def test_the_data_docs_of_the_demo_night_open_offline_in_headless_chromium(demo_night):
    root, settings, results = demo_night
    profile = root / "chromium-docs"
    validate_docs = Path(results[[r.step for r in results].index("validate")].details["data_docs"])
    check_docs = Path(results[[r.step for r in results].index("check")].details["data_docs"])
    staged = json.loads((validate_docs.parent.parent / "validate.json").read_text())["entities"]
    verdicts = {f"stg_{entity}": e["great_expectations"] for entity, e in staged.items()
                if e.get("great_expectations")}
    marts = json.loads((check_docs.parent.parent / "check.json").read_text())["marts"]
    assert len(verdicts) >= 10 and {"customer_value", "crm_account_tier"} <= set(marts)

    for docs, tables in ((validate_docs, verdicts),
                         (check_docs, {mart: m["great_expectations"] for mart, m in marts.items()})):
        pages = list(docs.parent.rglob("*.html"))
        assert not [p for p in pages if p.name != "index_gx.html" and REMOTE_ASSET.search(p.read_text())]
        dom = dump_dom(profile, docs.as_uri())
        rows = dict(re.findall(r'<tr><td>(\w+)</td><td data-status="(\w+)">', dom))
        assert rows == {table: "passed" if gx["success"] else "failed" for table, gx in tables.items()}
        links = re.findall(r'href="([^"]+)"', dom)
        assert len(links) >= 2 * len(rows) and all((docs.parent / link).is_file() for link in links), links

    [page] = (validate_docs.parent / "validations" / "stg_order_line").rglob("*.html")
    dom = dump_dom(profile, page.as_uri())
    expected = verdicts["stg_order_line"]
    text = " ".join(re.sub(r"<[^>]+>", " ", dom).split())
    assert "Expectation Validation Result" in text
    assert f"Evaluated Expectations {len(expected['checks'])} " in text
    assert f"Successful Expectations {sum(c['success'] for c in expected['checks'])} " in text
    shot = screenshot(profile, page.as_uri(), root / "data_docs.png", "1200,1600")
    width, height, pixels = read_png(shot)
    counts = colour_counts(pixels)
    assert counts["#1a7f37"] > 50  # the green check marks of the local stylesheet are drawn (0 without it)
    assert counts["#ffffff"] < 0.97 * width * height  # tables and text drawn, not a blank page
