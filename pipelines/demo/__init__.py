"""Demo source systems: a seeded, realistic CRM, ERP and SCM for a B2B distributor.

    systems = generate_demo(customers=10_000, as_of=date(2026, 11, 22), seed=42, dirty_share=0.01)
    write_demo(systems, urls={"crm": "sqlite:///demo/crm.db", "erp": ..., "scm": ...})
    write_truth(systems, "demo/truth.parquet")

`systems` maps "crm", "erp" and "scm" to {table name: pyarrow.Table}; `systems.truth` is the
ground truth of the planted patterns (one row per ERP customer) and `systems.dirty` counts the
planted faults. Table names, columns and SQL types are in `pipelines.demo.schema`.
"""

from pipelines.demo.generate import DemoSystems, generate_demo
from pipelines.demo.load import write_demo
from pipelines.demo.truth import write_truth

__all__ = ["DemoSystems", "generate_demo", "write_demo", "write_truth"]
