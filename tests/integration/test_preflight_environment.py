"""Preflight of the run's environment, before any sequence opens: folders the job user cannot write, an S3
prefix that refuses writes, a warehouse role without the privileges the job needs.

The tests run as root, which ignores permission bits: an unwritable folder is made real by a regular
file where the folder should be. The role is a real PostgreSQL LOGIN role without privileges (trust
authentication lets the job connect as it) against a warehouse an earlier run, as root, created; the
refusal names the role, each missing privilege and the statements to run, which the test then runs.
"""

from __future__ import annotations

import re
import uuid

import pytest

from etl import privileges
from etl.config import EtlSettings, MySQLSettings, WarehouseSettings
from etl.context import Context, preflight_environment
from etl.errors import ConfigError, WarehouseError
from etl.metadata import load_metadata
from tests.support.databases import PG, pg_connect
from tests.support.oracle import assert_store_equals_source
from tests.support.s3 import CREDENTIALS, moto_server

REFUSED = 35  # [retcode] scheduling_error: RunJob could not start


def runs(project) -> list[tuple]:
    """etl_control.run as (sequence, completed?) rows."""
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT execution_sequence, completed_datetime IS NOT NULL FROM etl_control.run ORDER BY 1")
    rows = cur.fetchall()
    pg.close()
    return rows


@pytest.fixture
def bare_role(project):
    """A uniquely named LOGIN role with no privilege of its own (PUBLIC's only); dropped afterwards, with
    whatever it was granted or came to own in the project's warehouse."""
    role = f"t_role_{uuid.uuid4().hex[:10]}"
    conn = pg_connect("postgres")
    conn.cursor().execute(f'CREATE ROLE "{role}" LOGIN')
    conn.close()
    try:
        yield role
    finally:
        pg = project.pg()
        cur = pg.cursor()
        cur.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
        cur.execute(f'DROP OWNED BY "{role}"')
        pg.close()
        conn = pg_connect("postgres")
        conn.cursor().execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.close()


def statements_of(message: str) -> list[str]:
    """The statements a refusal says to run, in its order."""
    said = message.split("run as the owner of these objects or a superuser: ", 1)[1].split("; or set [warehouse] user", 1)[0]
    return re.findall(r"GRANT [^;]+|DO \$\$.*?END\$\$", said)


def role_settings(project, role: str) -> WarehouseSettings:
    return WarehouseSettings(flavor="postgres", host=PG["host"], port=PG["port"], user=role, database=project.warehouse_db)


def test_a_role_without_privileges_is_refused_before_a_sequence_opens_and_runs_once_granted(project, bare_role):
    project.populate("--scale", "0.001", "--seed", "5")
    project.run()  # as root: creates etl_control, landing, store and pres
    assert runs(project) == [(1, True)]
    project.write_cfg(warehouse={"user": bare_role})

    proc = project.run(expect=REFUSED)
    where = f"{bare_role}@{PG['host']}:{PG['port']}/{project.warehouse_db}"
    assert (f"warehouse {where}: the role {bare_role} lacks privileges the job needs (checked before any sequence "
            "opens):") in proc.stderr
    assert ("USAGE and CREATE on schema etl_control (it exists, but this role cannot use it: the runs recorded in "
            "etl_control.run are invisible to it, so the job would take the latest sequence as 0)") in proc.stderr
    for schema in ("landing", "pres", "store_mysql", "store_weblog"):
        assert f"USAGE and CREATE on schema {schema} (it exists, but this role cannot use it)" in proc.stderr
    assert "SELECT, INSERT, UPDATE, DELETE on the etl_control tables etl_control.committed_metadata, " in proc.stderr
    assert re.search(r"ownership of \d+ tables the job alters, truncates and drops, owned by root: ", proc.stderr)
    assert "InsufficientPrivilege" not in proc.stderr
    assert runs(project) == [(1, True)]  # no sequence opened
    assert not project.output(2).exists()

    assert (f"CREATE on database {project.warehouse_db} (the job runs CREATE SCHEMA IF NOT EXISTS for its schemas)"
            in proc.stderr)
    statements = statements_of(proc.stderr)
    assert statements[:7] == [f'GRANT CREATE ON DATABASE "{project.warehouse_db}" TO "{bare_role}"'] + [
        f'GRANT USAGE, CREATE ON SCHEMA "{s}" TO "{bare_role}"'
        for s in ("etl_control", "landing", "pres", "store_mysql", "store_weblog")
    ] + [f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "etl_control" TO "{bare_role}"']
    assert len(statements) == 8 and statements[7].startswith("DO $$")
    pg = project.pg()
    for statement in statements:
        pg.cursor().execute(statement)
    pg.close()

    project.populate("--changes", "1", "--seed", "6")
    project.run()
    assert runs(project) == [(1, True), (2, True)]
    assert_store_equals_source(project)


def test_a_missing_schema_needs_create_on_the_database(project, bare_role):
    """Before the first run no schema exists: the role must be able to create them (one query, timed)."""
    pg_connect(project.warehouse_db).cursor().execute(f'REVOKE CREATE, TEMPORARY ON DATABASE "{project.warehouse_db}" FROM PUBLIC')
    metas = load_metadata(project.root / "extract_config").values()
    with pytest.raises(WarehouseError) as info:
        privileges.check_role(role_settings(project, bare_role), metas)
    message = str(info.value)
    assert (f"CREATE on database {project.warehouse_db} (the job runs CREATE SCHEMA IF NOT EXISTS for its schemas; "
            "etl_control, landing, pres, store_mysql do not exist yet)") in message
    assert f"TEMPORARY on database {project.warehouse_db} (the pres files and the store upsert use temporary tables)" in message
    assert statements_of(message) == [f'GRANT CREATE, TEMPORARY ON DATABASE "{project.warehouse_db}" TO "{bare_role}"']
    pg_connect(project.warehouse_db).cursor().execute(statements_of(message)[0])

    privileges.check_role(role_settings(project, bare_role), metas)  # passes now (its cost: BENCHMARKS.md, not a test)


def test_a_file_where_the_reports_folder_should_be_is_refused_before_a_sequence_opens(project):
    project.populate("--scale", "0.001", "--seed", "5")
    reports = project.root / "reports"
    reports.write_text("not a folder\n")
    (project.root / "out").write_text("")
    project.write_cfg(dw_etl={"reports_dir": "reports", "completed_dir": "out/completed"})

    proc = project.run(expect=REFUSED)
    assert ("the job cannot write where it writes (checked before any sequence opens):\n"
            f"  [dw_etl] completed_dir = '{project.root / 'out' / 'completed'}': the job user root "
            f"cannot write there: {project.root / 'out'} is not a folder; remove or move the file in the way, or "
            "point the setting at a folder\n"
            f"  [dw_etl] reports_dir = '{reports}': the job user root cannot write there: it exists but "
            "is not a folder; remove or move the file in the way, or point the setting at a folder") in proc.stderr
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname IN ('landing', 'store_mysql')")
    assert cur.fetchone()[0] == 0  # nothing loaded
    pg.close()
    assert not (project.output(1)).exists()
    assert not list((project.root / "staging").rglob("execution_sequence=*"))

    reports.unlink()
    (project.root / "out").unlink()
    project.run()
    assert runs(project) == [(1, True)]
    assert (reports / "1" / "dashboard.html").exists()


def folders_context(project, output: str = "output") -> Context:
    """The project's configuration as a Context (its folders under the project folder), for calling
    preflight_environment in this process."""
    return Context(
        source=MySQLSettings(host="127.0.0.1", port=3306, user="root", database=project.source_db),
        warehouse=WarehouseSettings(flavor="postgres", host=PG["host"], port=PG["port"], user=PG["user"],
                                    database=project.warehouse_db),
        etl=EtlSettings(extract_config_dir=str(project.root / "extract_config"), sql_dir="",
                        output_dir=str(project.root / output), completed_dir=str(project.root / "completed"),
                        reports_dir=str(project.root / "reports"), staging_uri=str(project.root / "staging"),
                        s3_endpoint_url="", lookback_seconds=300, safety_lag_seconds=0, batch_rows=100,
                        landing_keep_sequences=7, detect_hard_deletes=True),
    )


def test_the_folders_are_created_owner_only_and_probed_without_leaving_a_file(project):
    ctx = folders_context(project, "a/output")
    metas = [*load_metadata(project.root / "extract_config").values()]
    preflight_environment(ctx, str(project.root / "rejects"), metas)
    for folder in ("a", "a/output", "completed", "reports", "rejects", "staging/mysql", "staging/weblog"):
        path = project.root / folder
        assert path.is_dir() and (path.stat().st_mode & 0o777) == 0o700, folder
        assert list(path.glob(".preflight-probe-*")) == []


def test_a_staging_root_that_is_a_file_is_refused_naming_staging_uri_with_the_other_folders(project):
    ctx = folders_context(project)
    (project.root / "staging").write_text("")
    (project.root / "rejects").write_text("")
    with pytest.raises(ConfigError) as info:
        preflight_environment(ctx, str(project.root / "rejects"), [])
    staging, rejects = project.root / "staging", project.root / "rejects"
    assert str(info.value) == (
        "the job cannot write where it writes (checked before any sequence opens):\n"
        f"  [weblog] rejects_dir = '{rejects}': the job user root cannot write there: it exists but is "
        "not a folder; remove or move the file in the way, or point the setting at a folder\n"
        f"  [staging] uri = '{staging}': the job user root cannot write there: it exists but is not a "
        "folder; remove or move the file in the way, or point the setting at a folder")


# --- S3 staging: credentials that may read the bucket but not write under the prefix ------------------

READ_ONLY = ["s3:ListBucket", "s3:HeadBucket", "s3:GetObject"]  # moto authorises HEAD bucket as s3:HeadBucket


@pytest.fixture
def s3_with_iam():
    """moto's S3 and IAM on 127.0.0.1 (tests/support/s3.py), its IAM authorisation turned on by
    ``enforce(True)`` (moto's reset-auth endpoint; process-wide, so turned off again at the end).
    Yields (url, enforce)."""
    import requests

    with moto_server() as url:
        def enforce(on: bool) -> None:
            requests.post(f"{url}/moto-api/reset-auth", data=b"0" if on else b"inf", timeout=10)

        try:
            yield url, enforce
        finally:
            enforce(False)


def test_s3_staging_that_refuses_writes_is_refused_before_a_sequence_opens(project, s3_with_iam):
    import json

    import boto3

    url, enforce = s3_with_iam
    admin = boto3.Session(aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    s3, iam = admin.client("s3", endpoint_url=url), admin.client("iam", endpoint_url=url)
    s3.create_bucket(Bucket="dw-readonly")
    iam.create_user(UserName="etl")

    def allow(actions: list[str]) -> None:
        iam.put_user_policy(UserName="etl", PolicyName="staging", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions,
                                                     "Resource": ["arn:aws:s3:::dw-readonly", "arn:aws:s3:::dw-readonly/*"]}]}))

    allow(READ_ONLY)
    key = iam.create_access_key(UserName="etl")["AccessKey"]
    env = project.env(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
                      AWS_DEFAULT_REGION="us-east-1")
    project.populate("--scale", "0.001", "--seed", "5")
    project.write_cfg(staging={"uri": "s3://dw-readonly/elt", "s3_endpoint_url": url})

    enforce(True)
    proc = project.run(expect=REFUSED, env=env)
    enforce(False)
    assert ("the job cannot write where it writes (checked before any sequence opens):\n  S3 staging "
            "s3://dw-readonly/elt: writing the probe object elt/.preflight-probe-") in proc.stderr
    assert ("was denied (AccessDenied); the job writes and deletes objects under s3://dw-readonly/elt/: allow "
            "s3:PutObject and s3:DeleteObject on arn:aws:s3:::dw-readonly/elt/* to these credentials, or fix "
            "[staging] uri") in proc.stderr
    assert s3.list_objects_v2(Bucket="dw-readonly").get("KeyCount") == 0  # nothing staged, no probe left
    assert runs(project) == []  # no sequence opened (the run lock created etl_control)
    assert not project.output(1).exists()

    allow([*READ_ONLY, "s3:PutObject", "s3:DeleteObject"])  # what the message says
    enforce(True)
    project.run(env=env)
    enforce(False)
    assert runs(project) == [(1, True)]
    assert_store_equals_source(project)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="dw-readonly").get("Contents", [])}
    assert "elt/mysql/companies/execution_sequence=1/part-00000.csv.gz" in keys
    assert not [k for k in keys if ".preflight-probe-" in k]
