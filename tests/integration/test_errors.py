"""Bad metadata, unreachable databases and wrong passwords fail fast, clearly, non-zero, without secrets."""

from __future__ import annotations

import uuid

from tests.support.databases import mysql_connect

SECRET = "S3cr3t-" + uuid.uuid4().hex[:8]


def edit_metadata(project, table: str, **changes) -> None:
    path = project.root / "extract_config" / "mysql_tables.yaml"
    text = path.read_text()
    import yaml

    doc = yaml.safe_load(text)
    doc[table].update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_unknown_column_is_named(project):
    project.populate("--scale", "0.001")
    columns = project.metadata()["customers"]["columns"]
    edit_metadata(project, "customers", columns=columns + ["no_such_column"])
    proc = project.run(expect=35)
    assert "table 'customers', field 'columns': column 'no_such_column' does not exist" in proc.stderr
    assert "mysql_tables.yaml" in proc.stderr
    assert not (project.root / "output" / "1").exists()  # nothing ran


def test_non_identifier_is_rejected_before_any_sql(project):
    project.populate("--scale", "0.001")
    edit_metadata(project, "companies", unique_columns=["company_id; DROP TABLE companies"])
    proc = project.run(expect=35)
    assert "field 'unique_columns': 'company_id; DROP TABLE companies' is not an identifier" in proc.stderr
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM companies")
    assert cur.fetchone()[0] > 0


def test_unreachable_source(project):
    project.write_cfg(mysql={"port": 1})
    proc = project.run(expect=35)
    assert "MySQL source root@127.0.0.1:1/" in proc.stderr
    assert "server unreachable" in proc.stderr and "start MariaDB/MySQL or fix [mysql] host and port" in proc.stderr


def test_unreachable_warehouse(project):
    project.populate("--scale", "0.001")
    project.write_cfg(warehouse={"port": 1})
    proc = project.run(expect=35)
    assert "warehouse root@127.0.0.1:1/" in proc.stderr and "start PostgreSQL or fix [warehouse] host and port" in proc.stderr


def test_wrong_password_is_not_printed(project):
    project.populate("--scale", "0.001")
    user = "etl_" + uuid.uuid4().hex[:8]
    admin = mysql_connect()
    cur = admin.cursor()
    cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'right-password'")
    cur.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY 'right-password'")
    try:
        project.write_cfg(mysql={"user": user})
        proc = project.run(expect=35, env=project.env(MYSQL_PASSWORD=SECRET))
        assert f"access denied for user '{user}'" in proc.stderr
        assert "MYSQL_PASSWORD" in proc.stderr
        assert SECRET not in proc.stdout + proc.stderr
        written = "".join(p.read_text(errors="replace") for p in project.root.rglob("*") if p.is_file())
        assert SECRET not in written
    finally:
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cur.execute(f"DROP USER IF EXISTS '{user}'@'localhost'")
        admin.close()


def test_wrong_config_value_fails_non_zero_even_without_a_retcode_section(project):
    project.write_cfg(warehouse={"flavor": "oracle"}, retcode=None)
    assert "[retcode]" not in project.cfg_path.read_text()
    proc = project.run(expect=35)
    assert f"[warehouse] flavor = 'oracle' (set in {project.cfg_path}) must be one of postgres, redshift" in proc.stderr


def test_redshift_flavour_needs_s3_staging_and_a_role(project):
    project.write_cfg(warehouse={"flavor": "redshift"})
    proc = project.run(expect=35)
    assert "[warehouse] flavor = redshift loads with COPY from S3, but [staging] uri = " in proc.stderr
    assert "set [staging] uri = s3://bucket/prefix" in proc.stderr
    project.write_cfg(warehouse={"flavor": "redshift"}, staging={"uri": "s3://bucket/prefix"})
    proc = project.run(expect=35)
    assert "[warehouse] flavor = redshift needs [warehouse] iam_role" in proc.stderr
