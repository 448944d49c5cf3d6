"""Point Airflow at a throwaway home before anything imports it.

Airflow reads its configuration once, at import; so the test modules that use it import this
module first. The metadata database is created once per test session by `airflow db migrate`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="kam-airflow-")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"


@cache
def migrate_metadata_db() -> None:
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True, capture_output=True, env=os.environ.copy(),
    )
