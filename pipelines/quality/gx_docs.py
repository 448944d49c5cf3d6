"""Great Expectations 1.x over the validated tables, and its Data Docs: one static site per run.

The suites are the same `Expectation` objects the SQL checks use (pipelines/quality/suites.py),
rendered as GX expectations. GX runs in an ephemeral context (nothing kept but the HTML) on a
pandas frame of the table — every row up to `quality.gx_rows`, the first that many beyond — and
writes the site to `<warehouse>/quality/<run id>/<step>_docs/`.

GX's pages load Bootstrap, jQuery, Font Awesome and Vega from CDNs, and its index draws its tables
with JavaScript from those CDNs: opened without a network, the index is blank. So after GX renders,
`make_offline` strips every remote script and stylesheet, adds a small local stylesheet (tables,
status marks), and writes KAM's own static index; GX's index stays as `index_gx.html` for readers
who are online.
"""

from __future__ import annotations

import html
import logging
import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from pipelines.quality.suites import Expectation

SITE = "kam_local"


class GxRun:
    """One ephemeral GX context per KAM step: `validate` once per table, then `build` the docs.

    GX works on a thread of its own, in the order it is asked: `validate` queues a table and
    returns a future of its result, so the step checks the next table in SQL while GX judges
    this one. GX is Python holding the interpreter's lock, DuckDB's scans let go of it: on a
    replayed 1M night GX took 3.6 s of validate's 11.2 s on one core while the scans waited, and
    beside them validate took 9.6 s. The frames are made by the caller, on its DuckDB connection;
    GX only reads them. `close` drops what is still queued when the step stops early."""

    def __init__(self, docs_dir: Path, run_id: str):
        self.run_id = run_id
        self.docs_dir = docs_dir
        self.validated: list[dict] = []  # one summary per table, for the offline index
        self.frame_seconds = 0.0  # the caller's, making the frames
        self._gx_seconds = 0.0  # GX's own, on its thread
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="great-expectations")
        self._opened = self._worker.submit(self._open)  # first in the queue: done before any other task

    @property
    def seconds(self) -> float:
        """GX's time and the frames': what GX costs the step's CPU (no longer its wall time)."""
        return self._gx_seconds + self.frame_seconds

    def _open(self) -> None:
        started = time.perf_counter()  # importing GX is a good part of its cost: counted
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.docs_dir.mkdir(parents=True, exist_ok=True)
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.context.add_data_docs_site(SITE, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(self.docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        self.source = self.context.data_sources.add_pandas("kam_warehouse")
        self._gx_seconds += time.perf_counter() - started

    def validate(self, table: str, frame, suite: list[Expectation], *, rows_total: int,
                 merged_first: bool = False) -> Future[dict]:
        """Queue the suite on `frame` (all of `table`, or a slice of its `rows_total` rows: the
        first rows of the scan, or with `merged_first` tonight's merged rows first); the future
        holds what `_validate` returns."""
        return self._worker.submit(self._validate, table, frame, suite, rows_total=rows_total,
                                   merged_first=merged_first)

    def _validate(self, table: str, frame, suite: list[Expectation], *, rows_total: int,
                  merged_first: bool) -> dict:
        self._opened.result()  # GX's own error if it could not start
        started = time.perf_counter()
        gx = self.gx
        sampled = len(frame) < rows_total
        which = "tonight's merged rows first, then the first rows of the scan" if merged_first else \
            "the first rows of the scan"
        gx_suite = gx.ExpectationSuite(
            name=table,
            meta={"notes": {"format": "markdown", "content": (
                f"KAM run `{self.run_id}`: {len(frame):,} of {rows_total:,} rows"
                + (f" ({which}; the quarantine and the stop rules checked every row in SQL)"
                   if sampled else "") + ".")}},
        )
        skipped = []
        for expectation in suite:
            if expectation.kind == "min_rows" and sampled:
                continue
            gx_expectation = expectation.gx()
            if gx_expectation is None or any(c not in frame.columns for c in expectation.columns
                                             if expectation.kind != "column_type"):
                skipped.append(expectation.name)
                continue
            gx_suite.add_expectation(gx_expectation)
        gx_suite = self.context.suites.add(gx_suite)
        batch = self.source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("run")
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=table, data=batch, suite=gx_suite))
        validation = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY",
                                    run_id=gx.RunIdentifier(run_name=self.run_id))
        checks = [{
            "expectation": r.expectation_config.type,
            "kwargs": {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
            "success": bool(r.success),
            "unexpected_count": (r.result or {}).get("unexpected_count"),
        } for r in validation.results]
        seconds = time.perf_counter() - started
        self._gx_seconds += seconds
        self.validated.append({"table": table, "success": bool(validation.success), "rows": len(frame),
                               "rows_total": rows_total, "checks": len(checks),
                               "failed": sum(not c["success"] for c in checks)})
        return {"success": bool(validation.success), "rows": len(frame), "rows_total": rows_total,
                "checks": checks, "skipped": skipped, "seconds": round(seconds, 3)}

    def build(self) -> Path:
        """Render the Data Docs of every table validated (one build: it re-renders the index), once
        GX is through the queue, and end its thread."""
        try:
            self._worker.submit(self._build).result()
        finally:
            self.close()
        return self.index()

    def _build(self) -> None:
        self._opened.result()
        started = time.perf_counter()
        self.context.build_data_docs(site_names=[SITE])
        make_offline(self.docs_dir, self.validated, self.run_id)
        self._gx_seconds += time.perf_counter() - started

    def close(self) -> None:
        """End GX's thread; what is still queued is dropped (the step is stopping)."""
        self._worker.shutdown(wait=True, cancel_futures=True)

    def index(self) -> Path:
        return self.docs_dir / "index.html"


_REMOTE_TAG = re.compile(
    r"""<script[^>]*\ssrc=["']https?://[^>]*>\s*</script>|<link[^>]*\shref=["']https?://[^>]*>""", re.I)
_REMOTE_IMAGE = re.compile(r"""<img[^>]*\ssrc=["']https?://[^>]*>""", re.I)
OFFLINE_CSS = "static/styles/kam_offline.css"
_STYLES = """\
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
.collapse:not(.show) { display: none; }
.fas::before { font-style: normal; font-weight: bold; }
.fas.text-success::before, .ok::before { content: "\\2714"; color: #1a7f37; }
.fas.text-danger::before, .failed::before { content: "\\2718"; color: #cf222e; }
.fas.text-warning::before { content: "!"; color: #9a6700; }
"""


def make_offline(docs_dir: Path, validated: list[dict], run_id: str) -> None:
    """Make the site readable with no network: local styles only, and an index that needs no script."""
    css = docs_dir / OFFLINE_CSS
    css.parent.mkdir(parents=True, exist_ok=True)
    css.write_text(_STYLES)
    index = docs_dir / "index.html"
    if index.exists():
        index.replace(docs_dir / "index_gx.html")
    for page in docs_dir.rglob("*.html"):
        if page.name == "index_gx.html":
            continue
        text = _REMOTE_IMAGE.sub("", _REMOTE_TAG.sub("", page.read_text()))
        href = Path(*[".."] * (len(page.relative_to(docs_dir).parts) - 1), OFFLINE_CSS).as_posix()
        page.write_text(text.replace("</head>", f'<link rel="stylesheet" href="{href}">\n</head>', 1))
    index.write_text(_index_page(docs_dir, validated, run_id))


def _index_page(docs_dir: Path, validated: list[dict], run_id: str) -> str:
    """One row per validated table: its status, checks, rows, and links to its result and suite."""
    rows = []
    for v in validated:
        results = sorted((docs_dir / "validations" / v["table"]).rglob("*.html"))
        result = results[-1].relative_to(docs_dir).as_posix() if results else None
        suite = f"expectations/{v['table']}.html"
        mark = '<span class="ok"></span> passed' if v["success"] else '<span class="failed"></span> failed'
        sampled = f" of {v['rows_total']:,}" if v["rows"] < v["rows_total"] else ""
        table = html.escape(v["table"])
        status = "passed" if v["success"] else "failed"
        link = f'<a href="{result}">result</a>' if result else "—"
        rows.append(
            f'<tr><td>{table}</td><td data-status="{status}">{mark}</td>'
            f"<td>{v['checks'] - v['failed']} of {v['checks']}</td><td>{v['rows']:,}{sampled}</td>"
            f'<td>{link}</td><td><a href="{suite}">suite</a></td></tr>')
    title = f"KAM data quality — {html.escape(run_id)}"
    report = html.escape(docs_dir.name.removesuffix("_docs"))  # validate_docs/ sits beside validate.json
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{OFFLINE_CSS}"></head>
<body><h1>{title}</h1>
<p>Great Expectations validation results of this step, one row per table. Every row of every table
was also checked in SQL: the quarantine and the stop rules are in
<code>../{report}.json</code> and <code>kam quality</code>. Made to be read
offline; <a href="index_gx.html">GX's own index</a> needs a network connection.</p>
<table id="validations"><thead><tr><th>table</th><th>status</th><th>expectations met</th>
<th>rows validated</th><th>validation result</th><th>expectation suite</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
