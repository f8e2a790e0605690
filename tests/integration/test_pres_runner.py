"""The pres runner keeps each file's watermark: a file gets ``pres_build.since`` and holds only its transform
(that the repository's files do: tests/unit/test_pres_runner.py)."""

from __future__ import annotations

import shutil

from tests.support.paths import REPO


def test_a_new_pres_file_gets_its_since_and_its_watermark_advances_in_its_transaction(project):
    sql_dir = project.root / "sql"
    shutil.copytree(REPO / "sql", sql_dir)
    # a user's file: records the since it was given, and fails on demand (after its writes)
    (sql_dir / "pres" / "050_rpt_builds.sql").write_text(
        "create table if not exists pres.rpt_builds (since timestamptz, built timestamptz);\n"
        "insert into pres.rpt_builds select since, now() from pres_build;\n"
        "create table if not exists pres.rpt_fail (fail boolean);\n"
        "select 1 / (case when exists (select 1 from pres.rpt_fail where fail) then 0 else 1 end);\n")
    project.write_cfg(dw_etl={"sql_dir": str(sql_dir)})
    project.populate("--scale", "0.001")
    project.run()
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT since::text, built FROM pres.rpt_builds")
    (first_since, first_built), = cur.fetchall()
    assert first_since == "1900-01-01 00:00:00+00"  # no watermark yet: a full build
    cur.execute("SELECT value FROM etl_control.pres_watermark WHERE name = 'rpt_builds'")
    assert cur.fetchone() == (first_built,)  # the start of the file's transaction

    # a failing build rolls back its writes and its watermark together
    cur.execute("INSERT INTO pres.rpt_fail VALUES (true)")
    pg.commit()
    project.populate("--changes", "5", "--seed", "3")
    proc = project.run(expect=30)
    assert "050_rpt_builds.sql failed" in proc.stderr and "division by zero" in proc.stderr
    cur.execute("SELECT count(*) FROM pres.rpt_builds")
    assert cur.fetchone() == (1,)
    cur.execute("SELECT value FROM etl_control.pres_watermark WHERE name = 'rpt_builds'")
    assert cur.fetchone() == (first_built,)

    cur.execute("DELETE FROM pres.rpt_fail")
    pg.commit()
    project.run()  # the resumed sequence: the file gets the watermark of its last successful build
    cur.execute("SELECT since FROM pres.rpt_builds ORDER BY built")
    assert [row[0] for row in cur.fetchall()][1:] == [first_built]
    pg.close()
