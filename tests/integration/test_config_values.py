"""A wrong configuration value stops the real ``luigi`` command before any sequence opens.

After one good run (sequence 1), each bad configuration exits with the scheduling error's code,
names section, key, value and the file or command line flag that set it, and leaves nothing
behind: no new etl_control.run row, no new output/ folder, no staging file. The exact messages
of every kind of value: tests/unit/test_config_check.py.
"""

from __future__ import annotations

from etl.config_check import MAX_WINDOW_SECONDS


def runs(project) -> list[int]:
    conn = project.pg()
    with conn.cursor() as cur:
        cur.execute("SELECT execution_sequence FROM etl_control.run ORDER BY 1")
        found = [row[0] for row in cur.fetchall()]
    conn.close()
    return found


def state(project) -> tuple:
    """What a run would leave: the recorded runs, the output folders and the staged files."""
    staged = sorted(str(p.relative_to(project.root)) for p in (project.root / "staging").rglob("*") if p.is_file())
    return runs(project), sorted(p.name for p in (project.root / "output").iterdir()), staged


def test_a_wrong_value_stops_the_job_before_a_sequence_opens(project):
    project.populate("--scale", "0.001")
    project.run()
    before = state(project)
    assert before[:2] == ([1], ["1"])
    cfg = project.cfg_path

    # the reported cases: each a traceback before; the look-back an OverflowError after sequence 2 had opened
    project.write_cfg(mysql={"port": "abc"}, dw_etl={"lookback_seconds": "99999999999", "detect_hard_deletes": "yes"})
    proc = project.run("--dw-etl-batch-rows", "0", expect=35)
    heading = "the configuration has 4 values the pipeline cannot use; fix each where it is set (nothing was run)"
    assert (f"{heading}:\n"
            f"  [mysql] port = 'abc' (set in {cfg}) must be a TCP port, an integer between 1 and 65535\n"
            f"  [dw_etl] lookback_seconds = '99999999999' (set in {cfg}) must be an integer number of seconds between "
            f"0 and {MAX_WINDOW_SECONDS} (further back than 1000-01-01, the oldest MySQL DATETIME, a window would "
            "start before 0001-01-01, the oldest date Python represents)\n"
            "  [dw_etl] batch_rows = '0' (set by the command line flag --dw-etl-batch-rows) must be an integer >= 1\n"
            f"  [dw_etl] detect_hard_deletes = 'yes' (set in {cfg}) must be true or false\n") in proc.stderr
    last = proc.stderr.rstrip("\n").split("\n")[-1]  # after Luigi's summary (etl.error_report)
    assert last.startswith(f"dw_etl: FAILED: RunJob cannot start: {heading} (4 problems listed above; details: ")
    assert "ValueError" not in proc.stderr and "OverflowError" not in proc.stderr
    assert state(project) == before

    # a value given on the command line wins over the file's, and is named by its flag
    project.write_cfg()
    proc = project.run("--dw-etl-lookback-seconds", "abc", expect=35)
    assert "[dw_etl] lookback_seconds = 'abc' (set by the command line flag --dw-etl-lookback-seconds) must be an " \
           "integer number of seconds between 0 and" in proc.stderr
    assert state(project) == before

    # a typo in a key would lose the setting: refused, naming the file and the key meant
    text = cfg.read_text().replace("lookback_seconds = 300", "lookback_second = 300")
    cfg.write_text(text)
    proc = project.run(expect=35)
    assert (f"  [dw_etl] lookback_second (set in {cfg}) is not a key of [dw_etl]; did you mean lookback_seconds? "
            "Nothing reads it, so its setting would be lost; rename or remove it.") in proc.stderr
    assert state(project) == before

    project.write_cfg()
    project.run()
    assert runs(project) == [1, 2]
