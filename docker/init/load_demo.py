"""Init job of docker-compose.yml: load the demo CRM, ERP and SCM into the sources PostgreSQL.

Runs once per volume: when the CRM already has its `accounts` table the job says so and exits
(set KAM_DEMO_RELOAD=1 to load again). The databases themselves are created by
docker/postgres-init/10-kam-databases.sql when the server first starts. The URLs come from
KAM_CRM_URL, KAM_ERP_URL and KAM_SCM_URL (passwords from PGPASSWORD), as for the `kam` CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa


def loaded(url: str) -> bool:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).has_table("accounts")
    finally:
        engine.dispose()


def main() -> int:
    missing = [n for n in ("KAM_CRM_URL", "KAM_ERP_URL", "KAM_SCM_URL") if not os.environ.get(n)]
    if missing:
        print(f"load_demo: set {', '.join(missing)} (see .env.example)", file=sys.stderr)
        return 2
    if loaded(os.environ["KAM_CRM_URL"]) and os.environ.get("KAM_DEMO_RELOAD") != "1":
        print("load_demo: the demo is already loaded (KAM_DEMO_RELOAD=1 loads it again)")
        return 0
    customers = os.environ.get("KAM_DEMO_CUSTOMERS", "10000")
    as_of = os.environ.get("KAM_DEMO_AS_OF", "2026-11-22")
    command = [sys.executable, "-m", "pipelines.cli", "demo-data", "--customers", customers, "--as-of", as_of]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
