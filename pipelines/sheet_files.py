"""Many small CSV files and Excel workbooks cut from one DuckDB table, rendered in SQL.

Why not DuckDB's own writers, a `COPY` per file: at a million accounts the exports are 4,910
owners' files, and a `COPY` costs its query whatever the file's size (1.9 ms a CSV, 4.3 ms a
workbook: 27 s a night). Here SQL renders every row's CSV line and worksheet row (DuckDB's own
casts format the values) a batch of files at a time, Arrow puts the lines in order, and Python
only writes each file's range of their bytes and zips the workbook.

The bytes are DuckDB's: the CSV follows its writer (a value is quoted when it is empty or holds a
comma, a quote, `#`, a newline or a carriage return; quotes are doubled), and every part of a
workbook but the sheet's rows is taken from a one-row workbook DuckDB's Excel extension writes at
the start (`Template`), so the styles, relationships and sheet header are the extension's own.
tests/test_sheet_files.py compares both with DuckDB's files for awkward values. What the
extension does, this does too, including writing control characters as they are.
"""

from __future__ import annotations

import itertools
import re
import tempfile
import zipfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import duck

SHEET = "xl/worksheets/sheet1.xml"
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# the number types compared with the extension's output (tests/test_sheet_files.py), and DECIMAL
_NUMBERS = ("INTEGER", "BIGINT", "DOUBLE")
_XML_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&apos;"))


@dataclass(frozen=True)
class Template:
    """A workbook as DuckDB's Excel extension writes it, less the sheet's rows: the parts in the
    extension's order and the sheet's text before its first row and after its last."""

    parts: tuple[tuple[str, bytes], ...]
    sheet_head: bytes
    sheet_tail: bytes

    @classmethod
    def from_duckdb(cls, con, sheet: str) -> Template:
        with tempfile.TemporaryDirectory() as folder:
            probe = Path(folder) / "probe.xlsx"
            con.execute(f"COPY (SELECT 1 AS a) TO {duck.sql_literal(str(probe))} "
                        f"(FORMAT xlsx, HEADER false, SHEET {duck.sql_literal(sheet)})")
            with zipfile.ZipFile(probe) as book:
                parts = tuple((name, book.read(name)) for name in book.namelist())
        text = dict(parts)[SHEET]
        start, end = text.index(b'<row r="1">'), text.rindex(b"</row>") + len(b"</row>")
        return cls(parts, text[:start], text[end:])


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _xml_text(value: str) -> str:
    escaped = value
    for char, entity in _XML_ESCAPES:
        escaped = f"replace({escaped}, {duck.sql_literal(char)}, {duck.sql_literal(entity)})"
    # five replaces are most of a row's cost, and few values hold any of the five characters
    return f"CASE WHEN regexp_matches({value}, '[&<>\"'']') THEN {escaped} ELSE {value} END"


def _csv_value(column: str, type_: str) -> str:
    if type_ == "VARCHAR":
        return (f"CASE WHEN {column} IS NULL THEN '' WHEN {column} = '' "
                f"OR regexp_matches({column}, '[,\"#\\n\\r]') "
                f"THEN concat('\"', replace({column}, '\"', '\"\"'), '\"') ELSE {column} END")
    return f"COALESCE(CAST({column} AS VARCHAR), '')"  # concat_ws leaves a NULL out, field and all


def _xml_cell(column: str, type_: str, letter: str, line: str) -> str:
    """A cell, or NULL for a NULL value (the extension writes no cell: `concat` skips it)."""
    if type_ == "VARCHAR":
        parts = ["'\" t=\"inlineStr\"><is><t>'", _xml_text(column), "'</t></is></c>'"]
    elif type_ == "BOOLEAN":
        parts = ["'\" t=\"b\" s=\"5\"><v>'", f"CASE WHEN {column} THEN '1' ELSE '0' END", "'</v></c>'"]
    elif type_ == "DATE":  # the extension's serial day: days since 1899-12-30, written as a double
        parts = ["'\" s=\"1\"><v>'", f"CAST(CAST({column} - DATE '1899-12-30' AS DOUBLE) AS VARCHAR)",
                 "'</v></c>'"]
    else:
        parts = ["'\"><v>'", f"CAST({column} AS VARCHAR)", "'</v></c>'"]
    return f"CASE WHEN {column} IS NOT NULL THEN concat('<c r=\"{letter}', {line}, {', '.join(parts)}) END"


def _check_columns(columns: list[tuple[str, str]]) -> None:
    for name, type_ in columns:
        if not _PLAIN_NAME.fullmatch(name):
            raise ValueError(f"column {name!r}: only plain names are written as a file's header")
        if type_ not in ("VARCHAR", "BOOLEAN", "DATE", *_NUMBERS) and not type_.startswith("DECIMAL"):
            raise TypeError(f"column {name!r} is {type_}: the files are written for text, INTEGER, BIGINT, "
                            "DOUBLE, DECIMAL, booleans and dates only (cast it to one of those)")


def render_sql(source: str, columns: list[tuple[str, str]], order: str, files: str) -> str:
    """SQL of every row of some files of `files` (file_no, first, last: a range of `order` in
    `source`): its `order`, its CSV line (with its line break) and its worksheet row. Parameters:
    the first and last `order`, and the first and last file_no, of the files to render. Unordered:
    putting the lines in order is `_in_file_order`'s (an ordered `string_agg` sorted the long
    texts, 10x the cost)."""
    _check_columns(columns)
    # DuckDB's `||` makes a new string at each step (a row's 100 steps copied its text 50 times
    # over); `concat` writes each line once, and leaves out its NULL arguments.
    values = [(f"s.{duck.sql_identifier(name)}", type_) for name, type_ in columns]
    fields = ", ".join(_csv_value(value, type_) for value, type_ in values)
    csv_line = f"concat(concat_ws(',', {fields}), chr(10))"  # every line ends with its break
    cells = ", ".join(_xml_cell(value, type_, _column_letter(i), "s._line")
                      for i, (value, type_) in enumerate(values))
    xml_row = f"concat('<row r=\"', s._line, '\">', {cells}, '</row>')"
    # a row's file is the last file starting at or before it (an ASOF join: the range join
    # `BETWEEN first AND last` took 8.6 s over 4,910 files at 1M rows, this 0.04 s)
    lined = (f"SELECT t.*, CAST(t.{order} - f.first + 2 AS VARCHAR) AS _line "  # row 1: the header
             f"FROM {source} t ASOF JOIN (SELECT * FROM {files} WHERE file_no BETWEEN $3 AND $4) f "
             f"ON t.{order} >= f.first WHERE t.{order} BETWEEN $1 AND $2")
    return f"SELECT s.{order} AS _order, {csv_line} AS csv, {xml_row} AS xml FROM ({lined}) s"


def _in_file_order(rendered: pa.Table, files: list[tuple[int, int, Path]]) -> tuple[list, list]:
    """Each file's CSV lines and sheet rows as one byte range each, in `order`: the rendered rows of
    a run of files cover one range of `order` with no gap, so a row's place is its `order` less
    the first. One `take` puts the texts in that order, and then a file's rows are consecutive
    bytes of the result: a file is a view of them, not a copy. Joining each file's texts with
    Arrow and making Python strings of them (then bytes again to write) took 0.95 CPU seconds at a
    million accounts, this 0.26 (of the exports' ~21; benchmarks/README.md)."""
    start = files[0][0]
    place = pc.subtract(rendered.column("_order"), start).to_numpy()
    n = len(place)
    if n != files[-1][1] - start + 1 or (np.bincount(place, minlength=n) != 1).any():
        raise ValueError("the rows to write do not cover the files' ranges once each")
    at = np.empty(n, dtype=np.int64)
    at[place] = np.arange(n)  # the row at each place: `place` is a permutation
    ends = np.array([last - start + 1 for _, last, _ in files])
    starts = np.concatenate([[0], ends[:-1]])
    ranges = []
    for name in ("csv", "xml"):
        texts = rendered.column(name).combine_chunks().take(pa.array(at))
        if texts.null_count:
            raise ValueError(f"a row rendered no {name} text")
        _, offsets, data = texts.buffers()
        width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
        bounds = np.frombuffer(offsets, dtype=width)[texts.offset:texts.offset + n + 1]
        view = memoryview(data) if data is not None else memoryview(b"")
        ranges.append([view[bounds[a]:bounds[b]] for a, b in zip(starts, ends, strict=True)])
    return ranges[0], ranges[1]


def header_row(names: list[str]) -> str:
    cells = "".join(f'<c r="{_column_letter(i)}1" t="inlineStr"><is><t>{name}</t></is></c>'
                    for i, name in enumerate(names))
    return f'<row r="1">{cells}</row>'


def write_book(path: Path, template: Template, header: bytes, rows: bytes | memoryview) -> None:
    """The template's workbook with `rows` (UTF-8 worksheet rows) under the `header` row."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, data in template.parts:
            if name == SHEET:
                data = b"".join((template.sheet_head, header, rows, template.sheet_tail))
            book.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                          compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)


def write_files(con, source: str, order: str, files: list[tuple[int, int, Path]], *, sheet: str,
                excel: bool = True, workers: int = 2, rows_per_query: int = 50_000,
                together: Path | None = None) -> None:
    """For each (first, last, stem) of `files`: `stem`.csv and, if `excel`, `stem`.xlsx of the rows
    of `source` whose `order` is in first..last, in that order, every column but `order`. The files'
    ranges follow one another in `order` (a batch of files reads one range of `source`); `source`
    is a table of the database, since the workers' cursors are connections of their own.
    `together`: also one CSV of every file's rows, in order, from the same rendered lines (the
    exports' everyone file: a `COPY` of its own rendered all the rows again, 1 s at 1M accounts).

    The files go in batches of about `rows_per_query` rows, one DuckDB cursor per worker; the
    workers' zipping runs beside DuckDB's rendering (zlib lets go of Python's lock)."""
    for (_, last, _), (first, _, stem) in itertools.pairwise(files):
        if first != last + 1:
            raise ValueError(f"{stem}: the files' ranges must follow one another ({first} after {last})")
    described = con.execute(f"DESCRIBE {source}").fetchall()
    columns = [(name, type_) for name, type_, *_ in described if name != order]
    names = [name for name, _ in columns]
    csv_header = (",".join(names) + "\n").encode()
    xml_header = header_row(names).encode()
    template = Template.from_duckdb(con, sheet) if excel else None
    # a table of the database, not a view of this connection: the workers' cursors read it
    con.register("_sheet_files_arrow", _files_table(files))
    con.execute("CREATE OR REPLACE TABLE main._sheet_files AS SELECT * FROM _sheet_files_arrow")
    con.unregister("_sheet_files_arrow")
    sql = render_sql(source, columns, order, "main._sheet_files")

    def write_batch(batch: tuple[int, int]) -> list[memoryview]:
        lo, hi = batch
        with con.cursor() as cursor:
            rendered = cursor.execute(sql, [files[lo][0], files[hi][1], lo, hi]).to_arrow_table()
        csv_texts, xml_texts = _in_file_order(rendered, files[lo:hi + 1])
        for (_, _, stem), csv, xml in zip(files[lo:hi + 1], csv_texts, xml_texts, strict=True):
            with stem.with_suffix(".csv").open("wb") as out:
                out.write(csv_header)
                out.write(csv)
            if template is not None:
                write_book(stem.with_suffix(".xlsx"), template, xml_header, xml)
        return csv_texts if together is not None else []

    try:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            batches = pool.map(write_batch, _batches(files, rows_per_query))  # in order, as they finish
            if together is None:
                list(batches)
            else:
                with together.open("wb") as out:
                    out.write(csv_header)
                    for texts in batches:
                        out.writelines(texts)
    finally:
        con.execute("DROP TABLE IF EXISTS main._sheet_files")


def _files_table(files: list[tuple[int, int, Path]]) -> pa.Table:
    return pa.table({"file_no": pa.array(range(len(files)), pa.int64()),
                     "first": pa.array([f[0] for f in files], pa.int64()),
                     "last": pa.array([f[1] for f in files], pa.int64())})


def _batches(files: list[tuple[int, int, Path]], rows: int) -> Iterable[tuple[int, int]]:
    """Runs of consecutive files of about `rows` rows (first and last index)."""
    start, count = 0, 0
    for i, (first, last, _) in enumerate(files):
        count += last - first + 1
        if count >= rows:
            yield start, i
            start, count = i + 1, 0
    if start < len(files):
        yield start, len(files) - 1
