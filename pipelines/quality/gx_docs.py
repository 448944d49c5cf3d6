"""Great Expectations 1.x over the validated tables, and its Data Docs: one static site per run.

The suites are the same `Expectation` objects the SQL checks use (pipelines/quality/suites.py),
rendered as GX expectations. GX runs in an ephemeral context (nothing kept but the HTML) on a
pandas frame of the table — every row up to `quality.gx_rows`, the first that many beyond — and
writes the site to `<warehouse>/quality/<run id>/data_docs/`, readable offline.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from pipelines.quality.suites import Expectation

SITE = "kam_local"


class GxRun:
    """One ephemeral GX context per KAM step; `validate` once per table, then `build` the docs."""

    def __init__(self, docs_dir: Path, run_id: str):
        started = time.perf_counter()  # importing GX is a good part of its cost: counted
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.run_id = run_id
        self.docs_dir = docs_dir
        docs_dir.mkdir(parents=True, exist_ok=True)
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.context.add_data_docs_site(SITE, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        self.source = self.context.data_sources.add_pandas("kam_warehouse")
        self.seconds = time.perf_counter() - started

    def validate(self, table: str, frame, suite: list[Expectation], *, rows_total: int) -> dict:
        """Run the suite on `frame` (all of `table`, or a sample of its `rows_total` rows)."""
        started = time.perf_counter()
        gx = self.gx
        sampled = len(frame) < rows_total
        gx_suite = gx.ExpectationSuite(
            name=table,
            meta={"notes": {"format": "markdown", "content": (
                f"KAM run `{self.run_id}`: {len(frame):,} of {rows_total:,} rows"
                + (" (the first rows of the scan; the quarantine and the stop rules checked every row in SQL)"
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
        self.seconds += seconds
        return {"success": bool(validation.success), "rows": len(frame), "rows_total": rows_total,
                "checks": checks, "skipped": skipped, "seconds": round(seconds, 3)}

    def build(self) -> Path:
        """Render the Data Docs of every table validated so far (one build: it re-renders the index)."""
        started = time.perf_counter()
        self.context.build_data_docs(site_names=[SITE])
        self.seconds += time.perf_counter() - started
        return self.index()

    def index(self) -> Path:
        return self.docs_dir / "index.html"
