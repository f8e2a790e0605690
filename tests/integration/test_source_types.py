"""Every MySQL/MariaDB column type a user's table may have round-trips into store, or is refused at preflight.

One purpose-built source table holds a column of each type (docs/source-types.md has the
map) with edge values: empty and 0x00 blobs, bit(1) and bit(64) at both ends, JSON with
unicode and nesting, the empty enum value, sets of several members, TIME at -838:59:59 and
838:59:59, YEAR 1901/2155/0000, float and double extremes, BIGINT UNSIGNED at its maximum,
DECIMAL(65,30) at its maximum and minimum, DATETIME(6)/TIMESTAMP(6) at their ends, and a
row of NULLs in every column. Store is compared with the source value by value.

"Exactly" means: the same value, compared in Python after each driver's own conversion,
except where noted per column:

* FLOAT: MySQL's text of a FLOAT has 6 significant digits (16777216 reads 16777200, via the
  connector too), so the source's exact value is read as ``col + 0e0`` (the double a FLOAT
  equals) and compared with store's ``real`` widened to ``float8``: equal bit for bit;
* JSON: jsonb normalises whitespace, key order and number spelling, so documents are
  compared as JSON values (parsed with exact decimals: ``1.5e300`` equals jsonb's
  ``1500...0``);
* SET: the connector returns a Python set; store holds MySQL's text (``x,z``);
* TIMESTAMP: the source session and the warehouse session are UTC.
"""

from __future__ import annotations

import json
import struct
from datetime import timezone
from decimal import Decimal

import pytest

COLUMNS = {  # column: MySQL type
    "bin4": "BINARY(4)", "vbin": "VARBINARY(300)", "tblob": "TINYBLOB", "blb": "BLOB", "mblob": "MEDIUMBLOB",
    "lblob": "LONGBLOB",
    "bit1": "BIT(1)", "bit5": "BIT(5)", "bit64": "BIT(64)",
    "jdoc": "JSON",
    "en": "ENUM('a','b','c')", "en_empty": "ENUM('','x')", "st": "SET('x','y','z')",
    "tm": "TIME(6)", "tm0": "TIME",
    "yr": "YEAR",
    "fl": "FLOAT", "db": "DOUBLE",
    "ubig": "BIGINT UNSIGNED", "big": "BIGINT", "dec65": "DECIMAL(65,30)",
    "dt6": "DATETIME(6)", "ts6": "TIMESTAMP(6) NULL",
    "flag": "TINYINT(1)", "utiny": "TINYINT UNSIGNED",
    # the types tests/integration/test_roundtrip.py and the sample tables already cover, at their ends here
    "usmall": "SMALLINT UNSIGNED", "med": "MEDIUMINT", "umed": "MEDIUMINT UNSIGNED", "i": "INT", "ui": "INT UNSIGNED",
    "ch": "CHAR(3)", "tt": "TINYTEXT", "mt": "MEDIUMTEXT", "lt": "LONGTEXT", "d": "DATE",
}
STORE_TYPES = {  # what store's format_type() says
    "bin4": "bytea", "vbin": "bytea", "tblob": "bytea", "blb": "bytea", "mblob": "bytea", "lblob": "bytea",
    "bit1": "bit(1)", "bit5": "bit(5)", "bit64": "bit(64)",
    "jdoc": "jsonb",
    "en": "text", "en_empty": "text", "st": "text",
    "tm": "interval", "tm0": "interval",
    "yr": "smallint",
    "fl": "real", "db": "double precision",
    "ubig": "numeric(20,0)", "big": "bigint", "dec65": "numeric(65,30)",
    "dt6": "timestamp(6) without time zone", "ts6": "timestamp(6) with time zone",
    "flag": "smallint", "utiny": "smallint",
    "usmall": "integer", "med": "integer", "umed": "integer", "i": "integer", "ui": "bigint",
    "ch": "character varying(3)", "tt": "text", "mt": "text", "lt": "text", "d": "date",  # lt: no json_valid check
}
EDGES = {  # column: values of rows 1-4
    "usmall": [65535, 0, 1, 32768], "med": [-8388608, 8388607, 0, -1], "umed": [16777215, 0, 1, 8388608],
    "i": [-2147483648, 2147483647, 0, -1], "ui": [4294967295, 0, 2147483648, 1],
    "ch": ["abc", "", "é東", " a"], "tt": ["é😀", "", "a,b\"c", "x" * 255], "mt": ["x" * 70000, "", "line\nbreak", "\\N"],
    "lt": ['{"kept": "verbatim",  "spaces": 1}', "", "not json", "{}"],
    "d": ["1000-01-01", "9999-12-31", "2024-02-29", "1970-01-01"],
}
DEC65_MAX = "9" * 35 + "." + "9" * 30
DOC = ('{"a": [1, 2, {"b": "é😀東京"}], "n": null, "t": true, "k": 1.5e300, "s": "quote \\" and \\\\ back\\nslash", '
       '"nested": {"deep": [[[]]], "empty": {}}, "z": -0.000001}')


def f32(value: float) -> float:
    """``value`` rounded to a 32-bit float (what MySQL stores in a FLOAT)."""
    return struct.unpack("f", struct.pack("f", value))[0]


ROWS = [
    dict(id=1, bin4=b"\x00\x00\x00\x00", vbin=b"", tblob=b"\x00", blb=bytes(range(256)), mblob=b"\xff" * 70000,
         lblob=b"", bit1=0, bit5=0b00101, bit64=2 ** 64 - 1, jdoc=DOC, en="invalid (becomes '')", en_empty="",
         st="x,y,z", tm="-838:59:59.000000", tm0="838:59:59", yr=1901, fl=f32(16777217.0), db=1.7976931348623157e308,
         ubig=18446744073709551615, big=-9223372036854775808, dec65=DEC65_MAX, dt6="1000-01-01 00:00:00.000000",
         ts6="1970-01-01 00:00:01.000000", flag=-128, utiny=255),
    dict(id=2, bin4=b"ab", vbin=b"\x00a\x00,\"\n\\", tblob=b"\xff" * 255, blb=b"", mblob=b"\x00", lblob=bytes(range(256)) * 4,
         bit1=1, bit5=0b11111, bit64=0, jdoc='[]', en="c", en_empty="x", st="x,z", tm="838:59:59.999999",
         tm0="-838:59:59", yr=2155, fl=f32(3.4028234663852886e38), db=5e-324, ubig=0, big=9223372036854775807,
         dec65="-" + DEC65_MAX, dt6="9999-12-31 23:59:59.999999", ts6="2038-01-19 03:14:07.999999", flag=127, utiny=0),
    dict(id=3, bin4=b"\x01\x02\x03\x04", vbin=b"\xc3\x28", tblob=b"", blb=b"\\x00", mblob=b"", lblob=b"\x00" * 9,
         bit1=1, bit5=0, bit64=2 ** 63, jdoc='"just a string, with \\u00e9"', en="a", en_empty="", st="y",
         tm="-00:00:00.000001", tm0="00:00:00", yr=0, fl=f32(1.2345678), db=0.1 + 0.2, ubig=9223372036854775808,
         big=0, dec65="0.000000000000000000000000000001", dt6="2024-02-29 12:34:56.789012",
         ts6="2024-06-30 23:59:59.500000", flag=1, utiny=1),
    dict(id=4, bin4=b"\xff\xff\xff\xff", vbin=b"\xff", tblob=b"\x00\x00", blb=b"\x00", mblob=b"\x00\xff",
         lblob=b"x", bit1=0, bit5=1, bit64=1, jdoc='{"x": 0, "y": [false, 1e-7, 12345678901234567890]}', en="b",
         en_empty="x", st="", tm="-12:30:00.5", tm0="100:00:00", yr=1970, fl=f32(1.17549435e-38),
         db=-2.2250738585072014e-308, ubig=1, big=-1, dec65="-0.000000000000000000000000000001",
         dt6="1970-01-01 00:00:00.000000", ts6="2000-01-01 00:00:00.000000", flag=0, utiny=128),
    dict(id=5, fl=f32(1e-45), db=-0.0, jdoc="0", tm="00:00:00.000001"),  # every other column NULL
    dict(id=6),  # every column NULL
]
for _index, _row in enumerate(ROWS[:4]):
    _row.update({column: values[_index] for column, values in EDGES.items()})


def bits(value, length: int) -> str | None:
    """A BIT value from the connector (int or bytes) as its ``length`` binary digits."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = int.from_bytes(value, "big")
    return format(value, f"0{length}b")


def json_value(text):
    """A JSON document as a comparable value (exact decimals), None for NULL."""
    return None if text is None else json.loads(text, parse_float=Decimal, parse_int=Decimal)


def set_members(value):
    if value is None:
        return None
    if isinstance(value, str):
        return set(value.split(",")) - {""}
    return set(value)


def naive_utc(value):
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def source_values(project, table: str, columns: list[str]) -> dict[int, dict]:
    """``{id: {column: value}}`` of the source as the connector returns it (FLOAT exactly: ``col + 0e0``)."""
    selected = ", ".join(f"`{c}` + 0e0" if COLUMNS.get(c) == "FLOAT" else f"`{c}`" for c in columns)
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute(f"SELECT id, {selected} FROM `{table}` ORDER BY id")
    rows = {r[0]: dict(zip(columns, r[1:])) for r in cur.fetchall()}
    conn.close()
    return rows


def store_values(project, table: str, columns: list[str]) -> dict[int, dict]:
    """``{id: {column: value}}`` of store (real as float8, jsonb as its text)."""
    def expr(c):
        kind = STORE_TYPES.get(c)
        return {"real": f'"{c}"::float8', "jsonb": f'"{c}"::text'}.get(kind, f'"{c}"')

    conn = project.pg()
    cur = conn.cursor()
    cur.execute(f"SELECT id, {', '.join(expr(c) for c in columns)} FROM store_mysql.{table} ORDER BY id")
    rows = {r[0]: dict(zip(columns, r[1:])) for r in cur.fetchall()}
    conn.close()
    return rows


def normalise(column: str, value, side: str):
    """One value in a form both sides share (see the module docstring for what is compared how)."""
    mysql_type = COLUMNS[column]
    if value is None:
        return None
    if mysql_type.startswith("BIT("):
        return bits(value, int(mysql_type[4:-1])) if side == "source" else value
    if mysql_type == "JSON":
        return json_value(value)
    if mysql_type.startswith("SET("):
        return set_members(value)
    if "BINARY" in mysql_type or "BLOB" in mysql_type:
        return bytes(value)
    if mysql_type.startswith("TIMESTAMP"):
        return naive_utc(value)
    if mysql_type == "FLOAT":
        return struct.pack("f", value)  # bit for bit
    if mysql_type == "DOUBLE":
        return struct.pack("d", value)
    return value


def assert_store_equals_source_by_value(project, table: str, columns: list[str]) -> int:
    src, dst = source_values(project, table, columns), store_values(project, table, columns)
    assert sorted(src) == sorted(dst)
    compared = 0
    for key, row in src.items():
        for column in columns:
            expected = normalise(column, row[column], "source")
            got = normalise(column, dst[key][column], "store")
            assert got == expected, f"id {key}, column {column}: store {dst[key][column]!r} != source {row[column]!r}"
            compared += 1
    return compared


def create_types_table(project) -> None:
    conn = project.mysql()
    cur = conn.cursor()
    columns = ", ".join(f"`{c}` {t}" for c, t in COLUMNS.items())
    cur.execute(f"CREATE TABLE all_types (id INT NOT NULL PRIMARY KEY, {columns}, "
                "updated_datetime DATETIME(6) NOT NULL DEFAULT '2024-01-01 00:00:00')")
    cur.execute("SET SESSION sql_mode = ''")  # lets an invalid enum value become the empty enum value ''
    for row in ROWS:
        names = list(row)
        cur.execute(f"INSERT INTO all_types ({', '.join(f'`{n}`' for n in names)}) VALUES "
                    f"({', '.join(['%s'] * len(names))})", [row[n] for n in names])
    # inside the look-back of the first run's window end, so the second run reads them again
    cur.execute("UPDATE all_types SET updated_datetime = UTC_TIMESTAMP(6) - INTERVAL 10 SECOND")
    conn.close()


def store_column_types(project, table: str) -> dict[str, str]:
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'store_mysql' AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped", [table])
    found = dict(cur.fetchall())
    conn.close()
    return found


def test_every_column_type_round_trips_into_store(project):
    project.populate("--scale", "0.001")
    create_types_table(project)
    columns = list(COLUMNS)
    project.add_table("all_types", ["id", *columns, "updated_datetime"], ["id"])
    project.run()
    types = store_column_types(project, "all_types")
    assert {c: types[c] for c in columns} == STORE_TYPES  # MariaDB's JSON (LONGTEXT + json_valid) is jsonb too
    assert assert_store_equals_source_by_value(project, "all_types", columns) == len(ROWS) * len(columns)

    # spot checks of what "equal" means above, on the warehouse's own terms
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT fl, db, tm::text, tm0::text, en, en_empty, st, bit64::text, length(mblob), ubig::text, "
                "dec65::text, jdoc -> 'a' -> 2 ->> 'b' FROM store_mysql.all_types WHERE id = 1")
    assert cur.fetchone() == (16777216.0, 1.7976931348623157e308, "-838:59:59", "838:59:59", "", "", "x,y,z", "1" * 64,
                              70000, "18446744073709551615", DEC65_MAX, "é😀東京")
    cur.execute("SELECT fl, tm::text, yr, extract(epoch FROM tm) FROM store_mysql.all_types WHERE id IN (3, 5) ORDER BY id")
    assert cur.fetchall() == [(1.2345678, "-00:00:00.000001", 0, Decimal("-0.000001")),
                              (1e-45, "00:00:00.000001", None, Decimal("0.000001"))]
    cur.execute("SELECT count(*) FROM store_mysql.all_types WHERE id = 6 AND "
                + " AND ".join(f'"{c}" IS NULL' for c in columns))
    assert cur.fetchone()[0] == 1
    conn.close()

    # the upsert sees a changed bytea, bit, jsonb and interval value, and no change in the rows
    # read again unchanged (row 1 leaves the look-back overlap, so the whole window is read)
    m = project.mysql()
    cur = m.cursor()
    cur.execute("UPDATE all_types SET blb = 0x0001, bit64 = 2, jdoc = '{\"a\": 1}', tm = '-00:00:01', "
                "updated_datetime = UTC_TIMESTAMP(6) WHERE id = 1")
    m.close()
    proc = project.run()
    assert "look-back overlap" in proc.stderr and "reading the whole window" in proc.stderr
    assert assert_store_equals_source_by_value(project, "all_types", columns) == len(ROWS) * len(columns)
    summary = json.loads((project.output(2) / "RunJob.json").read_text())
    row = next(r for r in summary["tables"] if r["table"] == "all_types")
    assert (row["extracted"], row["inserted"], row["updated"]) == (len(ROWS), 0, 1)
    # nothing changed: the overlap's MySQL fingerprint equals the one hashed from the staged
    # lines (binary, bit and float fields included), so it is not read again
    proc = project.run()
    assert "extract all_types: look-back overlap" in proc.stderr
    assert "unchanged since the previous extract (6 rows); not read again" in proc.stderr


MARIADB_COLUMNS = {"uid": "UUID", "ip6": "INET6", "ip4": "INET4"}


def test_mariadb_uuid_and_inet_types(project):
    project.populate("--scale", "0.001")
    conn = project.mysql()
    if "mariadb" not in conn.server_info.lower():
        conn.close()
        pytest.skip("UUID, INET4 and INET6 are MariaDB types")
    cur = conn.cursor()
    cur.execute("CREATE TABLE net (id INT PRIMARY KEY, uid UUID NULL, ip6 INET6 NULL, ip4 INET4 NULL, "
                "updated_datetime DATETIME NOT NULL DEFAULT '2024-01-01 00:00:00')")
    cur.executemany("INSERT INTO net (id, uid, ip6, ip4) VALUES (%s, %s, %s, %s)", [
        (1, "e4d6b6c2-1111-2222-3333-444455556666", "::ffff:1.2.3.4", "255.255.255.255"),
        (2, "00000000-0000-0000-0000-000000000000", "2001:db8::ff00:42:8329", "0.0.0.0"),
        (3, "ffffffff-ffff-ffff-ffff-ffffffffffff", "::", "10.0.0.1"),
        (4, None, None, None),
    ])
    conn.close()
    project.add_table("net", ["id", "uid", "ip6", "ip4", "updated_datetime"], ["id"])
    project.run()
    types = store_column_types(project, "net")
    assert (types["uid"], types["ip6"], types["ip4"]) == ("uuid", "inet", "inet")
    m = project.mysql()
    mcur = m.cursor()
    mcur.execute("SELECT id, uid, ip6, ip4 FROM net ORDER BY id")
    source = mcur.fetchall()
    m.close()
    pg = project.pg()
    pcur = pg.cursor()
    pcur.execute("SELECT id, uid::text, host(ip6), host(ip4) FROM store_mysql.net ORDER BY id")
    assert pcur.fetchall() == source  # PostgreSQL writes these addresses as MariaDB does
    pg.close()


@pytest.mark.parametrize("mysql_type", ["POINT", "GEOMETRY", "POLYGON", "GEOMETRYCOLLECTION"])
def test_spatial_columns_are_refused_at_preflight_with_what_to_do(project, mysql_type):
    project.populate("--scale", "0.001")
    conn = project.mysql()
    conn.cursor().execute(f"CREATE TABLE places (id INT PRIMARY KEY, shape {mysql_type} NULL, "
                          "updated_datetime DATETIME NOT NULL)")
    conn.close()
    project.add_table("places", ["id", "shape", "updated_datetime"], ["id"])
    proc = project.run(expect=35)
    assert (f"table 'places', column 'shape': MySQL type '{mysql_type.lower()}' is a spatial type, which is not "
            "extracted") in proc.stderr
    assert "exclude the column from the table's columns in extract_config, or extract a view" in proc.stderr
    assert "ST_AsBinary(col)" in proc.stderr
    assert not (project.root / "output" / "1").exists()  # refused before any task ran


def test_type_drift_of_the_new_types(project):
    """A json column stored as text by an earlier version becomes jsonb; bit(n) -> bit(m) is refused."""
    project.populate("--scale", "0.001")
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("CREATE TABLE docs (id INT PRIMARY KEY, doc JSON NULL, flags BIT(5) NULL, ratio FLOAT NULL, "
                "updated_datetime DATETIME NOT NULL)")
    cur.execute("INSERT INTO docs VALUES (1, '{\"k\": [1, \"é\"]}', b'10101', 0.5, '2024-01-01 00:00:00'), "
                "(2, NULL, NULL, NULL, '2024-01-01 00:00:00')")
    project.add_table("docs", ["id", "doc", "flags", "ratio", "updated_datetime"], ["id"])
    project.run()
    # as an earlier version left it: json as text in landing and store
    pg = project.pg()
    pcur = pg.cursor()
    for table in ("landing.mysql_docs", "store_mysql.docs"):
        pcur.execute(f"ALTER TABLE {table} ALTER COLUMN doc TYPE text")
    cur.execute("ALTER TABLE docs MODIFY ratio DOUBLE NULL")  # float -> double: real -> double precision
    cur.execute("UPDATE docs SET updated_datetime = UTC_TIMESTAMP(), doc = '{\"k\": 2}' WHERE id = 2")
    proc = project.run()
    assert "column doc widened from text to jsonb in the source; altering" in proc.stderr
    assert "column ratio widened from real to double precision" in proc.stderr
    assert store_column_types(project, "docs")["doc"] == "jsonb"
    assert store_column_types(project, "docs")["ratio"] == "double precision"
    pcur.execute("SELECT id, doc::text, flags::text, ratio FROM store_mysql.docs ORDER BY id")
    assert pcur.fetchall() == [(1, '{"k": [1, "é"]}', "10101", 0.5), (2, '{"k": 2}', None, None)]
    # a longer bit string would change every stored value (PostgreSQL pads bit strings on the right)
    cur.execute("ALTER TABLE docs MODIFY flags BIT(8) NULL")
    cur.execute("UPDATE docs SET updated_datetime = UTC_TIMESTAMP() WHERE id = 1")
    conn.close()
    proc = project.run(expect=30)
    assert ("table 'docs': column 'flags' is bit(5) in landing.mysql_docs but the source now gives bit(8)"
            in proc.stderr)
    pg.close()


def test_a_json_escape_jsonb_cannot_hold_is_removed_counted_and_named(project):
    """``\u0000`` is valid JSON for MySQL, not for jsonb: the escape is removed (the row counted as
    altered, its key named), an escaped backslash before ``u0000`` is kept, and the table loads."""
    project.populate("--scale", "0.001")
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("CREATE TABLE events_json (id INT PRIMARY KEY, doc JSON NULL, note TEXT NULL, "
                "updated_datetime DATETIME NOT NULL)")
    docs = [
        (1, r'{"a": "x\u0000y", "b": "say \"hi\", ok"}', r"text \u0000 stays"),
        (2, r'{"a": "x\\u0000y"}', None),  # the characters \u0000, not the escape: kept
        (3, r'{"k\u0000": [1, "\\\u0000"]}', "plain"),
        (4, None, r"\u0000"),
    ]
    cur.executemany("INSERT INTO events_json VALUES (%s, %s, %s, '2024-01-01 00:00:00')", docs)
    conn.close()
    project.add_table("events_json", ["id", "doc", "note", "updated_datetime"], ["id"])
    proc = project.run()
    assert ("table events_json: 2 rows stored without the NUL characters PostgreSQL cannot hold "
            "(rows per column: doc 2); keys: id=1; id=3") in proc.stderr
    pg = project.pg()
    pcur = pg.cursor()
    pcur.execute("SELECT id, doc, note FROM store_mysql.events_json ORDER BY id")
    assert pcur.fetchall() == [
        (1, {"a": "xy", "b": 'say "hi", ok'}, r"text \u0000 stays"),
        (2, {"a": r"x\u0000y"}, None),
        (3, {"k": [1, "\\"]}, "plain"),
        (4, None, r"\u0000"),
    ]
    pg.close()
