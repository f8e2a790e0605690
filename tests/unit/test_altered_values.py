"""The staged-line parser and the NUL removal of write_lines (no database).

A NUL character (PostgreSQL text cannot hold one) is removed from the staged value; the row
is counted per table and column as "altered", with the keys of the first such rows. The
whole-job side (markers, summary, reruns): tests/integration/test_altered_values.py.
"""

from __future__ import annotations

import io

import pytest

from etl.errors import StagingError
from etl.staging import PartFiles
from etl.staging_format import ALTERED_KEYS_KEPT, altered_message, staged_fields, write_lines


class _Buffer(io.BytesIO):
    def close(self):  # PartFiles closes its parts; keep the bytes readable
        pass


def _write(header, batches, key_columns=(), date_columns=(), json_columns=()):
    buffers: dict[int, _Buffer] = {}
    parts = PartFiles(lambda index: buffers.setdefault(index, _Buffer()))
    result = write_lines(parts, header, batches, list(date_columns), key_columns=list(key_columns),
                         json_columns=list(json_columns))
    return result, buffers[0].getvalue()


def test_staged_fields_splits_the_staging_dialect():
    assert staged_fields(b'7,"a,b""c",,3.50,""') == [b"7", b'a,b"c', None, b"3.50", b""]
    assert staged_fields(b'1,"line\nbreak",') == [b"1", b"line\nbreak", None]
    assert staged_fields(b"") == [None]
    assert staged_fields(bytearray(b'1,"\x00x"')) == [b"1", b"\x00x"]
    with pytest.raises(StagingError, match="not closed"):
        staged_fields(b'1,"open')
    with pytest.raises(StagingError, match="after a closing quote"):
        staged_fields(b'1,"a"b')


def test_write_lines_removes_nul_characters_and_counts_rows_per_column_with_their_keys():
    header = ["id", "txt", "vc"]
    batches = [
        [(b'5,1,"a\x00b",',), (b'5,2,"clean","also ""clean"""',)],
        [(b'5,3,"\x00","\x00x\x00"',), (b'5,4,,"\x00"',)],
    ]
    result, data = _write(header, batches, key_columns=["id"])
    assert data == (b'"execution_sequence","id","txt","vc"\n'
                    b'5,1,"ab",\n5,2,"clean","also ""clean"""\n5,3,"","x"\n5,4,,""\n')
    assert result.rows == 4
    assert result.altered_rows == 3  # rows, not values: row 3 has two altered values
    assert result.altered_values == {"txt": 2, "vc": 2}
    assert result.altered_keys == ["id=1", "id=3", "id=4"]
    assert altered_message("notes", result.altered_rows, result.altered_values, result.altered_keys) == (
        "table notes: 3 rows stored without the NUL characters PostgreSQL cannot hold "
        "(rows per column: txt 2, vc 2); keys: id=1; id=3; id=4")


def test_write_lines_removes_json_nul_escapes_only_from_json_columns():
    header = ["id", "doc", "note"]
    batches = [[
        (rb'1,1,"{""a"": ""x\u0000y""}","\u0000 as text"',),  # the escape: removed from doc only
        (rb'1,2,"{""a"": ""x\\u0000y""}",',),  # an escaped backslash, then u0000: kept
        (rb'1,3,"{""k\u0000"": ""\\\u0000""}","n' + b"\x00" + b'ul"',),  # both, and a NUL in the text column
        (rb'1,4,,"plain"',),
    ]]
    result, data = _write(header, batches, key_columns=["id"], json_columns=["doc"])
    assert data.splitlines()[1:] == [
        rb'"1","1","{""a"": ""xy""}","\u0000 as text"',  # rewritten field by field, every value quoted
        rb'1,2,"{""a"": ""x\\u0000y""}",',
        rb'"1","3","{""k"": ""\\""}","nul"',
        rb'1,4,,"plain"',
    ]
    assert (result.altered_rows, result.altered_values, result.altered_keys) == (2, {"doc": 2, "note": 1}, ["id=1", "id=3"])


def test_write_lines_names_composite_and_null_keys_and_keeps_only_the_first_keys():
    rows = [(f'1,"K\x00{i}",,"x\x00"'.encode(),) for i in range(ALTERED_KEYS_KEPT + 5)]
    result, data = _write(["code", "part", "name"], [rows], key_columns=["code", "part"])
    assert result.altered_rows == ALTERED_KEYS_KEPT + 5
    assert result.altered_values == {"code": ALTERED_KEYS_KEPT + 5, "name": ALTERED_KEYS_KEPT + 5}
    assert result.altered_keys[:2] == ["code=K0, part=NULL", "code=K1, part=NULL"]  # as stored: NUL removed
    assert len(result.altered_keys) == ALTERED_KEYS_KEPT
    assert b"\x00" not in data
    assert altered_message("t", result.altered_rows, result.altered_values, result.altered_keys).endswith("; ...")


def test_write_lines_without_nul_counts_nothing_and_keeps_the_invalid_date_flags():
    batches = [[(b'1,1,"a",', b"0"), (b'1,2,"b",2024-01-01', None)]]
    result, data = _write(["id", "txt", "d"], batches, key_columns=["id"], date_columns=["d"])
    assert (result.rows, result.altered_rows, result.altered_values, result.altered_keys) == (2, 0, {}, [])
    assert result.invalid_dates == {"d": 1}
    assert data.endswith(b'1,1,"a",\n1,2,"b",2024-01-01\n')
