"""pipelines/sheet_files.py writes the bytes DuckDB's own CSV writer and Excel extension write."""

from __future__ import annotations

import zipfile
from pathlib import Path

import duckdb
import openpyxl
import pytest

from pipelines import duck, sheet_files

AWKWARD = [  # text DuckDB's CSV writer quotes, text XML escapes, numbers and dates it formats its own way
    "plain", "", None, "a,b", 'say "hi"', "#hash", "two\nlines", "carriage\rreturn", "tab\there",
    " lead and trail ", "<&>'\"", "semi;colon", "back\\slash", "ünïcødé €", "nan", "1e5", "'quoted'",
]


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"LOAD {duck.sql_literal(str(duck.extension_path('excel')))}")
    n = len(AWKWARD)
    con.execute("CREATE TABLE words(i INTEGER, word VARCHAR)")
    con.executemany("INSERT INTO words VALUES (?, ?)", list(enumerate(AWKWARD)))
    con.execute(f"""CREATE TABLE rows AS
        SELECT r AS _row, w.word AS text, (r % 3 = 0) AS flag,
               CASE WHEN r % 5 = 4 THEN NULL ELSE DATE '2026-11-18' - (r * 37)::INTEGER END AS day,
               CASE r % 6 WHEN 0 THEN 1.5 WHEN 1 THEN 1e-7 WHEN 2 THEN -0.0 WHEN 3 THEN 123456789012.25
                          WHEN 4 THEN NULL ELSE r / 7 END::DOUBLE AS amount,
               (r * 1000003)::BIGINT AS big, (r - 20)::INTEGER AS small, (r / 4)::DECIMAL(18, 2) AS money,
               CASE WHEN r % 4 = 0 THEN NULL ELSE 'x' || r END AS other
        FROM range(1, 3 * {n} + 1) t(r) JOIN words w ON w.i = r % {n}
        ORDER BY r""")
    return con


def _duckdb_files(con, first: int, last: int, stem: Path) -> None:
    rows = f"SELECT * EXCLUDE (_row) FROM rows WHERE _row BETWEEN {first} AND {last} ORDER BY _row"
    con.execute(f"COPY ({rows}) TO '{stem}.csv' (FORMAT csv, HEADER)")
    con.execute(f"COPY ({rows}) TO '{stem}.xlsx' (FORMAT xlsx, HEADER true, SHEET 'accounts')")


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as book:
        return {name: book.read(name) for name in book.namelist()}


@pytest.mark.parametrize("rows_per_query", [1, 20, 10_000])
def test_the_files_are_byte_for_byte_what_duckdb_writes(tmp_path, rows_per_query):
    con = _connect()
    total = con.execute("SELECT count(*) FROM rows").fetchone()[0]
    cuts = [(1, 1), (2, 9), (10, 10), (11, 30), (31, total)]  # one-row files, and a file of every word
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir(), theirs.mkdir()
    files = [(first, last, ours / f"f{i}") for i, (first, last) in enumerate(cuts)]
    sheet_files.write_files(con, "main.rows", "_row", files, sheet="accounts", workers=2,
                            rows_per_query=rows_per_query)
    for i, (first, last) in enumerate(cuts):
        _duckdb_files(con, first, last, theirs / f"f{i}")
        assert (ours / f"f{i}.csv").read_bytes() == (theirs / f"f{i}.csv").read_bytes(), i
        mine, reference = _parts(ours / f"f{i}.xlsx"), _parts(theirs / f"f{i}.xlsx")
        assert list(mine) == list(reference)
        for name in reference:
            assert mine[name] == reference[name], (i, name)
    sheet = openpyxl.load_workbook(ours / "f4.xlsx", read_only=True)["accounts"]
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == total - 30 + 1 and values[0][0] == "text"
    left = "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_sheet_files'"
    assert not con.execute(left).fetchone()[0]


def test_without_excel_only_the_csv_files_are_written(tmp_path):
    con = _connect()
    sheet_files.write_files(con, "main.rows", "_row", [(1, 5, tmp_path / "a"), (6, 6, tmp_path / "b")],
                            sheet="accounts", excel=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]
    assert len((tmp_path / "a.csv").read_text().splitlines()) == 6


def test_a_column_it_cannot_write_the_way_duckdb_does_is_refused(tmp_path):
    con = _connect()
    con.execute("CREATE TABLE odd AS SELECT 1 AS _row, 1.5::FLOAT AS single")
    with pytest.raises(TypeError, match="'single' is FLOAT"):
        sheet_files.write_files(con, "main.odd", "_row", [(1, 1, tmp_path / "a")], sheet="accounts")
    con.execute('CREATE TABLE spaced AS SELECT 1 AS _row, 2 AS "two words"')
    with pytest.raises(ValueError, match="'two words'"):
        sheet_files.write_files(con, "main.spaced", "_row", [(1, 1, tmp_path / "a")], sheet="accounts")
    with pytest.raises(ValueError, match="must follow one another"):
        sheet_files.write_files(con, "main.rows", "_row", [(1, 2, tmp_path / "a"), (4, 5, tmp_path / "b")],
                                sheet="accounts")
    con.execute("DELETE FROM rows WHERE _row = 3")
    with pytest.raises(ValueError, match="do not cover the files' ranges once each"):  # a row missing
        sheet_files.write_files(con, "main.rows", "_row", [(1, 2, tmp_path / "a"), (3, 5, tmp_path / "b")],
                                sheet="accounts")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("rows_per_query", [1, 10_000])
def test_the_files_together_are_byte_for_byte_what_duckdb_writes_of_every_row(tmp_path, rows_per_query):
    con = _connect()
    total = con.execute("SELECT count(*) FROM rows").fetchone()[0]
    files = [(1, 7, tmp_path / "a"), (8, 8, tmp_path / "b"), (9, total, tmp_path / "c")]
    sheet_files.write_files(con, "main.rows", "_row", files, sheet="accounts", excel=False,
                            rows_per_query=rows_per_query, together=tmp_path / "all.csv")
    _duckdb_files(con, 1, total, tmp_path / "theirs")
    assert (tmp_path / "all.csv").read_bytes() == (tmp_path / "theirs.csv").read_bytes()
    lines = b"".join((tmp_path / f"{stem}.csv").read_bytes().split(b"\n", 1)[1] for stem in "abc")
    assert (tmp_path / "all.csv").read_bytes().split(b"\n", 1)[1] == lines


def test_no_files_together_are_the_header_duckdb_writes_for_no_rows(tmp_path):
    con = _connect()
    sheet_files.write_files(con, "main.rows", "_row", [], sheet="accounts", excel=False,
                            together=tmp_path / "all.csv")
    con.execute(f"COPY (SELECT * EXCLUDE (_row) FROM rows WHERE false) TO '{tmp_path}/theirs.csv' "
                "(FORMAT csv, HEADER)")
    assert (tmp_path / "all.csv").read_bytes() == (tmp_path / "theirs.csv").read_bytes()
