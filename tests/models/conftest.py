from pathlib import Path

import pandas as pd
import pytest

CDNOW = Path(__file__).parent.parent / "data" / "CDNOW_sample.txt"


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    """CDNOW transactions: customer_id, date, cds, amount (see tests/data/README.md)."""
    raw = pd.read_csv(CDNOW, sep=r"\s+", header=None, dtype={2: str},
                      names=["master_id", "customer_id", "date", "cds", "amount"])
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw
