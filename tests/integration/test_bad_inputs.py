"""A sweep of bad inputs and faults, as an operator makes them: each gets a named error as the run's
last line (no traceback on the terminal, nothing opened) or a counted quarantine while the rest loads.

Every case runs the real ``luigi RunJob`` on a populated source, on both source variants. A refused
case must leave no sequence opened (``output/`` and ``etl_control.run`` untouched); a quarantined one
must exit 0 with every MySQL table in store equal to its source.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from tests.support.oracle import assert_store_equals_source
from tests.support.paths import REPO
from tests.support.project import REFUSED, run_job

LINE = '10.0.0.{n} - - [10/Oct/2025:13:55:{s:02d} +0000] "GET /p/{n} HTTP/1.1" 200 12 "-" "Mozilla/5.0 (X11; Linux x86_64)"\n'


def _cfg(**sections):
    return lambda project: project.write_cfg(**sections)


def _file_in_place_of(key: str):
    """A regular file where the folder ``[dw_etl] <key>`` (or the staging folder) should be."""
    def make(project):
        path = project.root / f"not_a_folder_{key}"
        path.write_text("a file\n")
        section = "staging" if key == "uri" else "weblog" if key == "rejects_dir" else "dw_etl"
        project.write_cfg(**{section: {key: str(path)}})
    return make


def _yaml_syntax_error(project):
    path = project.root / "extract_config" / "mysql_tables.yaml"
    path.write_text(path.read_text() + "\nbroken: [unclosed\n")


def _missing_config_dir(project):
    shutil.rmtree(project.root / "extract_config")


def _missing_column(project):
    path = project.root / "extract_config" / "mysql_tables.yaml"
    text = path.read_text()
    assert "[company_id, company_name," in text
    path.write_text(text.replace("[company_id, company_name,", "[company_id, no_such_column, company_name,", 1))


def _broken_pres_sql(project):
    sql = project.root / "sql"
    shutil.copytree(REPO / "sql", sql)
    target = sql / "pres" / "035_dim_country.sql"
    target.write_text(target.read_text() + "\nSELECT no_such_column FROM pres.dim_country;\n")
    project.write_cfg(dw_etl={"sql_dir": str(sql)})


# (case id, what the operator did, exit code, words the last line holds): configuration mistakes, refused
# before the source is read, so one source variant is enough
REFUSALS = [
    ("lookback-not-a-number", _cfg(dw_etl={"lookback_seconds": "abc"}), REFUSED, "[dw_etl] lookback_seconds = 'abc'"),
    ("lookback-overflow", _cfg(dw_etl={"lookback_seconds": "99999999999"}), REFUSED,
     "[dw_etl] lookback_seconds = '99999999999'"),
    ("port-not-a-number", _cfg(mysql={"port": "abc"}), REFUSED, "[mysql] port = 'abc'"),
    ("boolean-word", _cfg(dw_etl={"detect_hard_deletes": "yes"}), REFUSED, "[dw_etl] detect_hard_deletes = 'yes'"),
    ("unknown-key", _cfg(dw_etl={"max_delete_fractoin": "0.9"}), REFUSED, "max_delete_fractoin"),
    ("flavor", _cfg(warehouse={"flavor": "oracle"}), REFUSED, "[warehouse] flavor = 'oracle'"),
    ("source-down", _cfg(mysql={"port": "1"}), REFUSED, "127.0.0.1:1"),
    ("warehouse-down", _cfg(warehouse={"port": "1"}), REFUSED, "127.0.0.1:1"),
    ("reports-dir-is-a-file", _file_in_place_of("reports_dir"), REFUSED, "reports_dir"),
    ("output-dir-is-a-file", _file_in_place_of("output_dir"), REFUSED, "output_dir"),
    ("rejects-dir-is-a-file", _file_in_place_of("rejects_dir"), REFUSED, "rejects_dir"),
    ("staging-is-a-file", _file_in_place_of("uri"), REFUSED, "not_a_folder_uri"),
    ("yaml-syntax", _yaml_syntax_error, REFUSED, "mysql_tables.yaml"),
    ("config-dir-missing", _missing_config_dir, REFUSED, "extract_config"),
    ("broken-pres-file", _broken_pres_sql, 30, "035_dim_country.sql"),
]
# mistakes whose refusal reads the source: on both variants
SOURCE_REFUSALS = [("missing-column", _missing_column, REFUSED, "table metadata does not match the source")]


@pytest.mark.parametrize("case, mistake, code, named", REFUSALS, ids=[c[0] for c in REFUSALS])
def test_a_mistake_is_refused_with_its_name_as_the_last_line(project, case, mistake, code, named):
    _refused(project, case, mistake, code, named)


@pytest.mark.parametrize("case, mistake, code, named", SOURCE_REFUSALS, ids=[c[0] for c in SOURCE_REFUSALS])
def test_a_mistake_about_the_source_is_refused_on_either_variant(project, variant, case, mistake, code, named):
    _refused(project, case, mistake, code, named)


def _refused(project, case, mistake, code, named):
    project.populate("--scale", "0.0005", "--seed", "17")
    mistake(project)
    lines = run_job(project, expect=code)
    text = "\n".join(lines)
    assert lines[-1].startswith("dw_etl: FAILED: ") and named in lines[-1], lines[-12:]
    assert "Traceback" not in text, text[-3000:]
    if code == REFUSED:
        output = project.root / "output"
        assert not output.exists() or not any(output.iterdir()), case


def test_damaged_and_foreign_log_files_are_quarantined_and_the_rest_loads(project, variant, tmp_path_factory):
    project.populate("--scale", "0.0005", "--seed", "17")
    logs = project.root / "logs"
    logs.mkdir()
    (logs / "access.log").write_text("".join(LINE.format(n=n, s=n % 60) for n in range(50)))
    whole = gzip.compress("".join(LINE.format(n=n, s=n % 60) for n in range(100, 400)).encode())
    (logs / "access.log.2.gz").write_bytes(whole[: len(whole) // 2])  # logrotate's compress, half done
    secret = tmp_path_factory.mktemp("elsewhere") / "secret.txt"
    secret.write_text("customer data\n")
    os.chmod(secret, 0o600)
    os.symlink(secret, logs / "access.log.evil")
    os.mkfifo(logs / "access.log.fifo")
    lines = run_job(project, expect=0)
    text = "\n".join(lines)
    assert "Traceback" not in text
    for name in ("access.log.2.gz", "access.log.evil", "access.log.fifo"):
        assert any("WARNING" in line and name in line for line in lines), name
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM store_weblog.access")
    assert cur.fetchone()[0] == 50  # the good file's lines, nothing of the others
    conn.close()
    assert not [p for p in Path(project.root / "rejects").rglob("*") if p.is_file() and b"customer data" in p.read_bytes()]
    assert assert_store_equals_source(project) > 0
    (logs / "access.log.2.gz").write_bytes(whole)  # the compress finished: its lines load on the next run
    run_job(project, expect=0)
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT count(*), count(DISTINCT access_key) FROM store_weblog.access")
    assert cur.fetchone() == (350, 350)
    conn.close()


def test_paths_matching_no_file_warn_naming_the_patterns(project):
    project.populate("--scale", "0.0005", "--seed", "17")
    project.write_cfg(weblog={"paths": str(project.root / "logz" / "access.log*")})
    lines = run_job(project, expect=0)
    assert any("WARNING" in line and "logz/access.log*" in line and "matches no file" in line for line in lines), \
        [line for line in lines if "WARNING" in line]
