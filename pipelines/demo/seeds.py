"""Named random streams, so one part of the generator can change without reshuffling the others.

Every component draws from its own generator keyed by (seed, name, chunk). Adding a column to the
contacts table then leaves the orders byte-identical, and a chunked loop gives the same rows
whatever else ran before it.
"""

from __future__ import annotations

import zlib

import numpy as np


def rng(seed: int, name: str, *keys: int) -> np.random.Generator:
    """The generator for component `name` (and chunk `keys`) of the data set made from `seed`."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), *keys])
