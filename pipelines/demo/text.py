"""Building millions of strings (ids, codes, dates as text) without a Python loop.

Fixed-width codes are laid out as a byte matrix and handed to Arrow as a string array's buffers,
which costs about as much as one NumPy copy; variable-width text goes through Arrow compute
kernels. A per-row Python f-string would take minutes at 30 million order lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)
_SALESFORCE_SUFFIX = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", np.uint8)


def from_matrix(chars: np.ndarray) -> pa.StringArray:
    """One string per row of an (n, width) uint8 matrix of ASCII codes."""
    n, width = chars.shape
    data = np.ascontiguousarray(chars, dtype=np.uint8)
    offsets = np.arange(n + 1, dtype=np.int64) * width
    if offsets[-1] < 2**31:
        return pa.Array.from_buffers(
            pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
        )
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    ).cast(pa.string())


_PAIRS = np.array([[ord(str(i // 10)), ord(str(i % 10))] for i in range(100)], np.uint8)
_PAIRS16 = _PAIRS.view(np.uint16).ravel()  # "00" .. "99" as two-byte units


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as an (n, width) ASCII matrix."""
    rest = np.asarray(values, dtype=np.int64).copy()
    pairs = (width + 1) // 2
    out = np.empty((len(rest), pairs), np.uint16)
    for k in range(pairs - 1, -1, -1):  # two digits per pass: a handful of passes
        quotient = rest // 100
        out[:, k] = _PAIRS16[rest - quotient * 100]
        rest = quotient
    return out.view(np.uint8)[:, 2 * pairs - width:]


def base62(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded base-62 digits (Salesforce alphabet) as an (n, width) ASCII matrix."""
    values = np.asarray(values, dtype=np.int64)
    powers = 62 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return BASE62[values[:, None] // powers % 62]


def literal(text: str, n: int) -> np.ndarray:
    """The same ASCII text on n rows, as a matrix to stack beside others."""
    return np.broadcast_to(np.frombuffer(text.encode("ascii"), np.uint8), (n, len(text)))


def code(prefix: str, values: np.ndarray, width: int) -> pa.StringArray:
    """Codes like 'C0012345': a literal prefix and zero-padded digits."""
    values = np.asarray(values)
    return from_matrix(np.hstack([literal(prefix, len(values)), digits(values, width)]))


def number_text(values: np.ndarray) -> pa.StringArray:
    """Integers as their decimal text, any width."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def salesforce_ids(prefix: str, pod: str, record_numbers: np.ndarray) -> pa.StringArray:
    """18-character Salesforce-style ids: key prefix, pod, '0', 9 base-62 digits, checksum.

    The last three characters are Salesforce's case-safe suffix: one letter per block of five
    characters telling which of them are upper case, so the id stays unique when a spreadsheet
    or a case-insensitive database folds it.
    """
    n = len(record_numbers)
    body = np.hstack([literal(prefix + pod + "0", n), base62(record_numbers, 9)])
    upper = ((body >= ord("A")) & (body <= ord("Z"))).reshape(n, 3, 5)
    suffix = _SALESFORCE_SUFFIX[upper @ np.array([1, 2, 4, 8, 16])]
    return from_matrix(np.hstack([body, suffix]))


def yyyymmdd(days: np.ndarray) -> pa.StringArray:
    """Days since 1970-01-01 as the CHAR(8) 'YYYYMMDD' text legacy ERPs store dates in."""
    days = np.asarray(days, dtype=np.int64)
    if len(days) == 0:
        return pa.array([], pa.string())
    # A few thousand distinct days: format each once, then copy 8 bytes per row.
    first = days.min()
    calendar = np.arange(first, days.max() + 1).astype("datetime64[D]")
    years = calendar.astype("datetime64[Y]")
    months = calendar.astype("datetime64[M]")
    number = (
        (years.astype(np.int64) + 1970) * 10_000
        + (months - years).astype(np.int64) * 100
        + 100
        + (calendar - months).astype(np.int64)
        + 1
    )
    lookup = np.ascontiguousarray(digits(number, 8)).view(np.uint64).ravel()
    return from_matrix(lookup[days - first].view(np.uint8).reshape(-1, 8))


def pick(words: Sequence[str], index: np.ndarray) -> pa.StringArray:
    """words[index] for every row, as an Arrow string array."""
    return pa.array(words, pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))


def join(*parts: pa.Array | str, sep: str = "") -> pa.StringArray:
    """Row-wise concatenation of string arrays and literals."""
    return pc.binary_join_element_wise(*parts, sep)


def slug(names: pa.Array) -> pa.StringArray:
    """Lower-case ASCII letters and digits only, e.g. for e-mail domains."""
    text = pc.utf8_lower(names)
    for umlaut, ascii_ in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("é", "e")):
        text = pc.replace_substring(text, umlaut, ascii_)
    return pc.replace_substring_regex(text, r"[^a-z0-9]+", "")
