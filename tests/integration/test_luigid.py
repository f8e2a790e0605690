"""A run against a real luigid central scheduler started on a free local port."""

from __future__ import annotations

import urllib.request

from tests.support.luigid import api
from tests.support.oracle import assert_store_equals_source


def test_run_against_luigid(project, luigid):
    project.populate("--scale", "0.001", "--seed", "5")
    # empty folders fall back to the project's own extract_config/ and sql/, whatever the cwd
    project.write_cfg(dw_etl={"extract_config_dir": "", "sql_dir": ""})
    project.run("--scheduler-url", f"http://127.0.0.1:{luigid}/", "--workers", "2")
    assert_store_equals_source(project)
    done = api(luigid, "task_list", {"status": "DONE", "upstream_status": "", "search": ""})
    families = sorted({task["name"] for task in done.values()})
    assert families == ["BuildPres", "BuildReports", "CheckQuality", "ExtractMySQLTable", "ExtractWeblog", "LoadLandingTable", "LoadWeblogLanding",
                        "RunJob", "UpsertStoreTable", "UpsertWeblogStore"]
    assert len(done) == 4 + 3 * len(project.metadata()) + 3
    # the web UI's page is served too
    with urllib.request.urlopen(f"http://127.0.0.1:{luigid}/static/visualiser/index.html", timeout=5) as page:
        assert b"Luigi" in page.read()
