"""Data quality: expectation suites on every canonical entity and mart, quarantine, stop rules.

* `suites` — the expectations, defined in code beside the canonical model (pipelines/canonical.py):
  each one renders both to a Great Expectations 1.x expectation and to a DuckDB SQL predicate.
* `validate` — the `validate` step (after `stage`: row-level failures to quarantine, stop rules)
  and the `check` step (after the marts are built, before `publish`: mart invariants).
* `gx_docs` — Great Expectations run on the validated tables and its Data Docs, one site per run.
* `quarantine` — what is held and why, and re-validating held rows after a rule change.
"""

from pipelines.quality.suites import QualityFailure

__all__ = ["QualityFailure"]
