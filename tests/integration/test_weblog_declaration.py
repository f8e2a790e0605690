"""The access-log source declared in extract_config/weblog.yaml: its types in the warehouse."""

from __future__ import annotations

import yaml

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def line(i: int) -> bytes:
    return f'8.8.8.8 - - [10/Oct/2025:13:00:{i:02d} +0000] "GET /p/{i} HTTP/1.1" 200 {i} "-" "{UA}"\n'.encode()


def information_schema_type(row) -> str:
    """An information_schema.columns row (data_type, character_maximum_length, datetime_precision) in the
    declaration's spelling."""
    data_type, length, precision = row
    if data_type == "character varying":
        return f"varchar({length})"
    if data_type == "timestamp without time zone":
        return f"timestamp({precision})"
    return data_type


def warehouse_types(project, table: str) -> dict[str, str]:
    schema, name = table.split(".")
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT column_name, data_type, character_maximum_length, datetime_precision "
                "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s", [schema, name])
    types = {row[0]: information_schema_type(row[1:]) for row in cur.fetchall()}
    conn.close()
    return types


def declare(project, **types) -> dict[str, str]:
    """Change column types in the project's weblog declaration; returns its column -> type mapping."""
    path = project.root / "extract_config" / "weblog.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["access"]["columns"].update(types)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return doc["access"]["columns"]


def test_landing_and_store_get_the_declared_types_and_follow_a_widening(project):
    project.populate("--scale", "0.001")
    logs = project.root / "logs"
    logs.mkdir()
    (logs / "access.log").write_bytes(b"".join(line(i) for i in range(5)))
    declared = declare(project, status_code="integer", device="varchar(20)")
    project.run()
    for table in ("landing.weblog_access", "store_weblog.access"):
        found = warehouse_types(project, table)
        assert {c: found[c] for c in declared} == declared, table
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT count(*), min(device), min(status_code) FROM store_weblog.access")
    assert cur.fetchone() == (5, "Windows", 200)
    conn.close()

    # a widened type: the next run alters landing and store (PostgreSQL), rows kept
    declared = declare(project, device="text", country="text")
    with open(logs / "access.log", "ab") as handle:
        handle.write(line(5))
    project.run()
    for table in ("landing.weblog_access", "store_weblog.access"):
        found = warehouse_types(project, table)
        assert (found["device"], found["country"], found["status_code"]) == ("text", "text", "integer"), table
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM store_weblog.access")
    assert cur.fetchone() == (6,)
    conn.close()

    # a narrowing is not done automatically: the landing load fails naming column and both types
    declare(project, status_code="smallint")
    with open(logs / "access.log", "ab") as handle:
        handle.write(line(6))
    proc = project.run(expect=None)
    assert proc.returncode != 0
    assert "column 'status_code' is integer in landing.weblog_access but the source now gives smallint" in proc.stderr
    assert warehouse_types(project, "landing.weblog_access")["status_code"] == "integer"


def test_without_the_declaration_nothing_runs(project):
    (project.root / "extract_config" / "weblog.yaml").unlink()
    proc = project.run(expect=35)
    assert "no weblog source declared in" in proc.stderr
    assert "restore extract_config/weblog.yaml" in proc.stderr
    assert not (project.root / "output" / "1").exists()
