"""The dashboard's charts are drawn again only for reports that changed (no browser; the rendering:
tests/integration/test_dashboard.py)."""

from __future__ import annotations

from etl.reports import ReportResult, write_outputs


def test_unchanged_reports_reuse_the_previous_charts(tmp_path, monkeypatch):
    """A report whose CSV equals the previous sequence's keeps its chart (no matplotlib); a changed one is redrawn."""
    from etl import reports

    first = [ReportResult("sql_top_5_most_used_devices", ["rank", "device", "request_count"], [(1, "iPhone", 3)]),
             ReportResult("sql_top_login_countries", ["rank", "country", "user_count", "request_count"], [(1, "DE", 2, 5)])]
    write_outputs(first, tmp_path / "1", "one")
    drawn = []
    monkeypatch.setattr(reports, "write_chart", lambda result, path: (drawn.append(result.name), path.write_bytes(b"new")))
    second = [first[0], ReportResult(first[1].name, first[1].columns, [(1, "DE", 2, 6)])]
    write_outputs(second, tmp_path / "2", "two", previous=tmp_path / "1")
    assert drawn == ["sql_top_login_countries"]
    old, new = (tmp_path / "1" / "sql_top_5_most_used_devices.png"), (tmp_path / "2" / "sql_top_5_most_used_devices.png")
    assert new.read_bytes() == old.read_bytes() and old.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "2" / "sql_top_login_countries.png").read_bytes() == b"new"
