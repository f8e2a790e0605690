"""The dashboard's charts are drawn again only for reports that changed (no browser; the rendering:
tests/integration/test_dashboard.py); the business formatting of the page and charts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from etl.reports import ReportResult, write_outputs
from tests.support.dashboard_samples import BUILT, PERIOD, sample_results


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


# ---------------------------------------------------------------------------------------------
# the page and charts for business users (the same page in Chromium: tests/integration/test_dashboard.py)

def _ticks(fig, axis: str) -> list[str]:
    """The tick labels drawn on the axis (within its limits)."""
    fig.canvas.draw()
    ax = fig.axes[0]
    labels, ticks, limits = ((ax.get_yticklabels(), ax.get_yticks(), ax.get_ylim()) if axis == "y" else
                             (ax.get_xticklabels(), ax.get_xticks(), ax.get_xlim()))
    low, high = sorted(limits)
    return [t.get_text() for t, at in zip(labels, ticks) if low <= at <= high and t.get_text()]


def test_the_value_axis_has_thousands_separators_and_never_scientific_notation():
    import matplotlib.pyplot as plt

    from etl.dashboard import chart

    monthly, devices = sample_results()[0], sample_results()[1]
    fig = chart(monthly)
    assert _ticks(fig, "y") == ["0", "500,000", "1,000,000", "1,500,000", "2,000,000", "2,500,000"]
    assert fig.axes[0].yaxis.get_offset_text().get_text() == ""  # no "1e6" above the axis
    assert _ticks(fig, "x")[:3] == ["Jan", "Feb", "Mar"] and fig.axes[0].get_ylabel() == "Sales"
    assert fig._suptitle.get_text() == "Monthly sales, 2025"
    plt.close(fig)
    fig = chart(devices)
    assert _ticks(fig, "y") == ["0", "2,000", "4,000", "6,000", "8,000", "10,000", "12,000", "14,000"]
    assert fig.axes[0].get_ylabel() == "Logins"
    plt.close(fig)
    small = ReportResult(monthly.name, monthly.columns, [("2025-01", 1, 1, Decimal("2.5"), *PERIOD)])
    fig = chart(small)
    assert _ticks(fig, "y")[:3] == ["0.00", "0.50", "1.00"]  # amounts below 10: cents on the axis
    plt.close(fig)


def test_products_are_named_beside_their_codes_and_names_stay_text():
    import matplotlib.pyplot as plt

    from etl.dashboard import chart

    top = sample_results()[3]
    fig = chart(top)
    assert _ticks(fig, "y") == ["Stainless steel valve DN50 (P000150)", 'Valve <"quoted"> & Co (P000007)', "P000151"]
    assert fig.axes[0].get_xlabel() == "Sales"
    assert [t.get_text() for t in fig.axes[0].texts] == ["2,345,678.50", "1,500,000.00", "99.99"]  # bar labels
    plt.close(fig)
    # one code from two suppliers: the labels name the supplier; mathtext characters are drawn as they are
    rows = [(1, "P1", 1, r"Bolt $\frac{1}{$ M8", "Acme", 5, Decimal("10.00"), *PERIOD),
            (2, "P1", 2, r"Bolt $\frac{1}{$ M8", None, 4, Decimal("9.00"), *PERIOD)]
    fig = chart(ReportResult(top.name, top.columns, rows))
    assert _ticks(fig, "y") == [r"Bolt $\frac{1}{$ M8 (P1) · Acme", r"Bolt $\frac{1}{$ M8 (P1) · 2"]
    plt.close(fig)


def test_the_title_states_the_reports_own_period_and_when_it_was_built(tmp_path):
    from zoneinfo import ZoneInfo

    from etl.dashboard import write_dashboard

    def page(results, built=BUILT) -> str:
        return write_dashboard(results, tmp_path, "Execution sequence 3", built).read_text()

    assert "<title>Sales 2025</title>" in page(sample_results())
    assert "<h1>Sales 2023</h1>" in page(sample_results((date(2023, 1, 1), date(2023, 12, 31))))
    text = page(sample_results((date(2024, 3, 1), date(2025, 2, 28))))
    assert "<h1>Sales 1 March 2024 – 28 February 2025</h1>" in text
    assert "Sales and website logins, 1 March 2024 – 28 February 2025. Built 4 May 2026, 10:15 UTC." in text
    assert "<h1>Sales April – June 2025</h1>" in page(sample_results((date(2025, 4, 1), date(2025, 6, 30))))
    berlin = datetime(2026, 5, 4, 12, 15, tzinfo=ZoneInfo("Europe/Berlin"))
    assert "Built 4 May 2026, 12:15 CEST (UTC+02:00)." in page(sample_results(), berlin)
    empty = [ReportResult(r.name, r.columns, []) for r in sample_results()]
    text = page(empty)
    assert "<h1>Sales</h1>" in text and "No report returned rows. Built 4 May 2026, 10:15 UTC." in text
    assert text.count("<p>No data for this period.</p>") == 5
    assert "<h2>Top 10 products bought by customers in the country with most logged-in users</h2>" in text
    assert "What do customers in the country where most of our website users log in buy most?" in text


def test_the_top_country_is_named_from_the_countries_report_when_it_bought_nothing(tmp_path):
    from etl.dashboard import write_dashboard

    results = sample_results()
    results[4] = ReportResult(results[4].name, results[4].columns, [])
    text = write_dashboard(results, tmp_path, built=BUILT).read_text()
    assert "<h2>Top 10 products bought by customers in US, the country with most logged-in users</h2>" in text
    assert "What do customers in US, where most of our website users log in, buy most?" in text


def test_values_are_formatted_for_reading():
    from etl.dashboard import format_value

    assert [format_value("amount", v) for v in (Decimal("1234567.891"), "1234567.5", Decimal("-0.5"), None, "")] == \
        ["1,234,567.89", "1,234,567.50", "-0.50", "", ""]
    assert [format_value("count", v) for v in (1234567, "42", Decimal("3"))] == ["1,234,567", "42", "3"]
    assert [format_value("quantity", v) for v in (Decimal("1500"), Decimal("2.5"), "7")] == ["1,500", "2.50", "7"]
    assert format_value("month", "2025-03") == "March 2025" and format_value("date", date(2025, 1, 1)) == "1 January 2025"
    assert format_value("date", "2025-12-31") == "31 December 2025"
    assert format_value("text", 'Ten, "Quoted" & Co\nLtd\t x') == 'Ten, "Quoted" & Co Ltd x'
    assert [format_value("amount", v) for v in ("n/a", Decimal("NaN"))] == ["n/a", "NaN"]


def test_results_read_back_from_the_csv_files_give_the_same_page(tmp_path):
    """A run whose inputs did not change reuses the previous CSV files (all text): the page is the same."""
    from etl.reports import _reuse

    first = write_outputs(sample_results(), tmp_path / "1", "Execution sequence 1", built=BUILT).read_text()
    read_back = [_reuse(tmp_path / "1", r.name) for r in sample_results()]
    assert read_back[0].rows[0] == ("2025-01", "437", "9310", "1123456.89", "2025-01-01", "2025-12-31")
    again = write_outputs(read_back, tmp_path / "2", "Execution sequence 1", tmp_path / "1", BUILT).read_text()
    assert again == first
    csv_header = (tmp_path / "1" / "sql_top_10_revenue_products.csv").read_text().splitlines()[:2]
    assert csv_header == ["rank,product_code,supplier_id,product_name,supplier_name,total_quantity,total_amount,"
                          "period_start,period_end",
                          "1,P000150,1,Stainless steel valve DN50,Acme Industrial Supplies,1234,2345678.5,2025-01-01,2025-12-31"]


def test_a_run_whose_report_files_are_unchanged_reuses_the_dashboard_sections_without_pandas(tmp_path, monkeypatch):
    import etl.dashboard
    from etl.dashboard import SECTIONS_FILE

    first, second, third = tmp_path / "1", tmp_path / "2", tmp_path / "3"
    write_outputs(sample_results(), first, "Execution sequence 1", built=BUILT)
    page = (first / "dashboard.html").read_text()
    assert (first / SECTIONS_FILE).stat().st_mode & 0o777 == 0o600  # private, like every report file

    def no_frames(result):
        raise AssertionError(f"{result.name}: the sections were computed again")

    monkeypatch.setattr(etl.dashboard, "frame", no_frames)
    later = datetime(2026, 5, 5, 10, 15, tzinfo=BUILT.tzinfo)
    write_outputs(sample_results(), second, "Execution sequence 2", previous=first, built=later)
    reused = (second / "dashboard.html").read_text()
    assert reused == page.replace("Built 4 May 2026", "Built 5 May 2026").replace("Execution sequence 1",
                                                                                    "Execution sequence 2")
    assert reused != page

    # one report's rows differ: its CSV differs, so every section is computed afresh
    monkeypatch.undo()
    changed = sample_results()
    changed[0] = ReportResult(changed[0].name, changed[0].columns, changed[0].rows[:-1])
    write_outputs(changed, third, "Execution sequence 3", previous=second, built=later)
    assert (third / "dashboard.html").read_text() != reused.replace("Execution sequence 2", "Execution sequence 3")

    # a damaged sections file is no reason to fail: the page is computed again
    (third / SECTIONS_FILE).write_text("{not json")
    fourth = tmp_path / "4"
    write_outputs(changed, fourth, "Execution sequence 3", previous=third, built=later)
    assert (fourth / "dashboard.html").read_text() == (third / "dashboard.html").read_text()
