"""The dashboard renders in headless Chromium (Debian's package): every chart visible, no console errors.

The screenshot is kept as a test artefact in ``test-artifacts/dashboard.png``.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from etl.reports import ReportResult, write_outputs
from tests.support.paths import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"


def sample_results() -> list[ReportResult]:
    return [
        ReportResult("sql_monthly_sales", ["year_month", "order_count", "total_quantity", "total_amount"],
                     [(f"2025-{m:02d}", m, m * 10, Decimal(m * 1000) / 3) for m in range(1, 13)]),
        ReportResult("sql_top_5_most_used_devices", ["device", "request_count", "user_count"],
                     [("Windows", 50, 9), ("iPhone", 40, 7), ("Android", 30, 6), ("Macintosh", 10, 3), ("Other", 5, 2)]),
        ReportResult("sql_top_login_countries", ["rank", "country", "user_count", "request_count"],
                     [(1, "US", 9, 90), (2, "GB", 5, 40), (3, "DE", 4, 41)]),
        ReportResult("sql_top_10_revenue_products", ["rank", "product_code", "supplier_id", "product_name", "total_quantity", "total_amount"],
                     [(1, "P1", 1, 'Valve <"quoted"> & Co', 3, Decimal("10.50")), (2, "P1", "CO00002", None, 2, Decimal("9.00"))]),
        ReportResult("sql_most_popular_products_from_country_with_most_logins",
                     ["country", "rank", "product_code", "supplier_id", "product_name", "total_quantity", "total_amount"], []),
    ]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is installed by scripts/test.sh")
def test_dashboard_renders_in_headless_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    dashboard = write_outputs(sample_results(), tmp_path / "reports", "Reports, test")
    problems, failed = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(dashboard.as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0, "
            "i.getBoundingClientRect().height])"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        text = page.inner_text("body")
        browser.close()
    assert [src for src, _, _ in images] == [f"{r.name}.png" for r in sample_results()]
    assert all(loaded and height > 100 for _, loaded, height in images), images
    assert problems == [] and failed == []
    assert 'Valve <"quoted"> & Co' in text  # escaped, shown as text
    assert "CO00002" in text  # a string supplier id beside a numeric one; the NULL name is an empty cell
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
