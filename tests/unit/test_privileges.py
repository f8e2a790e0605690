"""The preflight's environment checks without a database: the folder probe (etl.folders) and the warehouse
role's refusal built from the rows of its privilege query (etl.privileges). On real PostgreSQL, with a
real role and real folders: tests/integration/test_preflight_environment.py."""

from __future__ import annotations

import os

import pytest

from etl import folders, privileges
from etl.dialects import PostgresDialect, RedshiftDialect
from etl.domain import QualifiedName
from tests.support.sqltext import META


# --- folders --------------------------------------------------------------------------------------

def test_a_missing_folder_is_created_owner_only_whatever_the_umask_and_the_probe_leaves_nothing(tmp_path):
    old = os.umask(0)
    try:
        assert folders.writable_problem("[dw_etl] reports_dir", str(tmp_path / "a" / "reports")) is None
    finally:
        os.umask(old)
    for path in (tmp_path / "a", tmp_path / "a" / "reports"):
        assert path.stat().st_mode & 0o777 == 0o700
    assert list((tmp_path / "a" / "reports").iterdir()) == []


def test_an_existing_folder_keeps_its_mode(tmp_path):
    (tmp_path / "out").mkdir(mode=0o750)
    os.chmod(tmp_path / "out", 0o750)
    assert folders.writable_problem("[dw_etl] output_dir", str(tmp_path / "out")) is None
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o750


def test_a_file_in_place_of_the_folder_or_of_a_parent_is_named_with_the_key_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").write_text("")
    assert folders.writable_problem("[dw_etl] reports_dir", "reports") == (
        f"[dw_etl] reports_dir = 'reports' ({tmp_path / 'reports'}): the job user {folders._user()} cannot write "
        "there: it exists but is not a folder; remove or move the file in the way, or point the setting at a folder")
    assert folders.writable_problem("[weblog] rejects_dir", "reports/rejects") == (
        f"[weblog] rejects_dir = 'reports/rejects' ({tmp_path / 'reports' / 'rejects'}): the job user "
        f"{folders._user()} cannot write there: {tmp_path / 'reports'} is not a folder; remove or move the file in "
        "the way, or point the setting at a folder")


def test_an_os_error_of_the_probe_is_named(tmp_path, monkeypatch):
    """A read-only mount or a full disk fails the probe file, which os.access would not notice as root."""
    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(folders.tempfile, "mkstemp", refuse)
    assert folders.writable_problem("[dw_etl] output_dir", str(tmp_path)) == (
        f"[dw_etl] output_dir = '{tmp_path}': the job user {folders._user()} cannot write there: "
        "Read-only file system; make it writable by this user, or point the setting at a folder it can write")


# --- the warehouse role ---------------------------------------------------------------------------

JOB = privileges.pipeline([META])  # landing.mysql_order_lines, store_mysql.order_lines
GRANTED = [("database", "dw", None, "etl", "CREATE", True), ("database", "dw", None, "etl", "TEMP", True)]


def schema_rows(schema: str, usage: bool, create: bool) -> list[tuple]:
    return [("schema", schema, None, None, "USAGE", usage), ("schema", schema, None, None, "CREATE", create)]


def test_the_pipeline_is_etl_control_the_landing_and_store_schemas_and_pres():
    assert JOB == privileges.Pipeline(("etl_control", "landing", "pres", "store_mysql"),
                                      ("landing.mysql_order_lines",), ("store_mysql.order_lines",))


def test_a_role_with_every_privilege_passes():
    rows = GRANTED + [r for s in JOB.schemas for r in schema_rows(s, True, True)]
    assert privileges.role_problems(rows, JOB, "etl", "dw", PostgresDialect()) == ([], [])


def test_each_missing_privilege_is_named_with_its_grant():
    rows = [("database", "dw", None, "etl", "CREATE", False), ("database", "dw", None, "etl", "TEMP", True),
            *schema_rows("etl_control", False, False), *schema_rows("landing", True, False),
            ("table", "etl_control", "run", None, "SELECT", False), ("table", "etl_control", "run", None, "INSERT", True),
            ("table", "etl_control", "watermark", None, "DELETE", False),
            ("owner", "store_mysql", "order_lines", "admin", "OWNER", False)]
    problems, statements = privileges.role_problems(rows, JOB, "etl", "dw", PostgresDialect())
    assert problems == [
        "CREATE on database dw (the job runs CREATE SCHEMA IF NOT EXISTS for its schemas; pres, store_mysql do not "
        "exist yet)",
        "USAGE and CREATE on schema etl_control (it exists, but this role cannot use it: the runs recorded in "
        "etl_control.run are invisible to it, so the job would take the latest sequence as 0)",
        "CREATE on schema landing",
        "SELECT, DELETE on the etl_control tables etl_control.run, etl_control.watermark",
        "ownership of 1 table the job alters, truncates and drops, owned by admin: store_mysql.order_lines",
    ]
    assert statements == [
        'GRANT CREATE ON DATABASE "dw" TO "etl"',
        'GRANT USAGE, CREATE ON SCHEMA "etl_control" TO "etl"',
        'GRANT CREATE ON SCHEMA "landing" TO "etl"',
        'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "etl_control" TO "etl"',
        "DO $$DECLARE t text; BEGIN FOREACH t IN ARRAY ARRAY['\"store_mysql\".\"order_lines\"'] LOOP "
        "EXECUTE format('ALTER TABLE %s OWNER TO %I', t, 'etl'); END LOOP; END$$",
    ]


def test_redshift_transfers_ownership_table_by_table_and_reads_privileges_by_name():
    assert RedshiftDialect().owner_transfer(["landing.a", 'pres.b"c'], "etl") == [
        'ALTER TABLE "landing"."a" OWNER TO "etl"', 'ALTER TABLE "pres"."b""c" OWNER TO "etl"']
    query, params = privileges.privileges_query(RedshiftDialect(), JOB)
    assert "pg_has_role" not in query and "pg_inherits" not in query and "has_table_privilege(c.oid" not in query
    assert query.count("%s") == len(params) == 4 + 2  # the schemas, the landing and store tables


def test_postgres_reads_landing_partitions_with_their_table():
    query, params = privileges.privileges_query(PostgresDialect(), JOB)
    assert "pg_catalog.pg_inherits" in query and "information_schema" not in query
    assert query.count("%s") == len(params) and params[-1] == "landing.mysql_order_lines"


@pytest.mark.parametrize("name", ["landing", "my schema"])
def test_identifiers_in_the_statements_are_quoted(name):
    job = privileges.Pipeline((name,), (), ())
    rows = GRANTED + schema_rows(name, False, True)
    assert privileges.role_problems(rows, job, 'od"d', "dw", PostgresDialect())[1] == [
        f'GRANT USAGE ON SCHEMA "{name}" TO "od""d"']


def test_a_landing_table_of_another_schema_is_part_of_the_pipeline():
    import dataclasses

    meta = dataclasses.replace(META, landing_table=QualifiedName("raw", "ol"))
    assert privileges.pipeline([meta]).schemas == ("etl_control", "pres", "raw", "store_mysql")
