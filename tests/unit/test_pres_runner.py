"""The sql/pres files hold only their transform: the pres runner keeps each file's watermark (the runner
itself: tests/integration/test_pres_runner.py)."""

from __future__ import annotations

from tests.support.paths import REPO


def test_no_pres_file_keeps_its_own_watermark():
    for path in sorted((REPO / "sql" / "pres").glob("*.sql")):
        code = "\n".join(line.split("--")[0] for line in path.read_text().splitlines())
        assert "pres_watermark" not in code and "pres_build" in code, path.name
