"""Shared fixtures: unique source/warehouse databases per test, a project folder, job runs, luigid.

Integration tests talk to the real local MariaDB/MySQL (127.0.0.1:3306, root) and
PostgreSQL (127.0.0.1:5432, root) started by scripts/test.sh; each test gets its own
uniquely named databases, dropped afterwards. The pipeline runs as a real ``luigi``
subprocess with its own luigi.cfg (via LUIGI_CONFIG_PATH) in a temporary folder.

A test that takes the ``variant`` fixture runs once per source schema variant of
``populate orders`` (``sample``, ``strings``); its ``project.populate(...)`` creates that
variant.

The helpers behind these fixtures live in tests/support.
"""

from __future__ import annotations

import shutil
import uuid

import boto3
import pytest

from tests.support import luigid as luigid_server
from tests.support.databases import mysql_connect, pg_connect
from tests.support.paths import REPO
from tests.support.project import VARIANTS, Project
from tests.support.s3 import CREDENTIALS, moto_server

@pytest.fixture(scope="session")
def services():
    """Fail early, with the fix, when the local database servers are not reachable."""
    try:
        mysql_connect().close()
        pg_connect("postgres").close()
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(f"local MariaDB/PostgreSQL not reachable ({exc}); run scripts/services.sh")


@pytest.fixture(params=VARIANTS)
def variant(request) -> str:
    """The source schema variant (``populate orders --variant``); a test taking it runs once per variant."""
    return request.param


@pytest.fixture
def project(request, tmp_path, services):
    """A project folder with fresh, uniquely named source and warehouse databases (dropped after).

    Its ``variant`` is the test's ``variant`` fixture when the test takes one, else ``sample``.
    """
    suffix = uuid.uuid4().hex[:10]
    variant = request.getfixturevalue("variant") if "variant" in request.fixturenames else "sample"
    proj = Project(root=tmp_path, source_db=f"t_src_{suffix}", warehouse_db=f"t_dw_{suffix}", variant=variant)
    shutil.copytree(REPO / "extract_config", tmp_path / "extract_config")
    conn = pg_connect("postgres")
    conn.cursor().execute(f'CREATE DATABASE "{proj.warehouse_db}"')
    conn.close()
    proj.write_cfg()
    try:
        yield proj
    finally:
        m = mysql_connect()
        m.cursor().execute(f"DROP DATABASE IF EXISTS `{proj.source_db}`")
        m.close()
        conn = pg_connect("postgres")
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{proj.warehouse_db}" WITH (FORCE)')
        conn.close()


@pytest.fixture
def luigid(tmp_path):
    """A luigid central scheduler on a free local port (state under ``tmp_path/luigid``); yields the port."""
    try:
        port, pidfile = luigid_server.start(tmp_path)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield port
    luigid_server.stop(pidfile)


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on 127.0.0.1 for a test module; yields its endpoint URL."""
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(s3_server, monkeypatch):
    """A boto3 S3 client of ``s3_server``, with its fake credentials in the environment."""
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    return boto3.client("s3", endpoint_url=s3_server)
