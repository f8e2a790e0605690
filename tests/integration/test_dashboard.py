"""The dashboard renders in headless Chromium (Debian's package) and reads like a business report: a title with
the period and the build time, headers in words, formatted numbers, product names beside codes, the top login
country named, the question under each chart; every chart visible, no console errors.

The screenshot is kept in the test's temporary folder (``dashboard.png``; pytest keeps the last runs' folders
under its base temporary directory) and its path is printed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from etl.reports import write_outputs
from tests.support.dashboard_samples import BUILT, sample_results

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# the page's sections: sales, products, where the users are, what the top country buys, devices (whatever the results' order)
READING_ORDER = ["sql_monthly_sales", "sql_top_10_revenue_products", "sql_top_login_countries",
                 "sql_most_popular_products_from_country_with_most_logins", "sql_top_5_most_used_devices"]
TEXTS = [
    "Sales 2025",
    "Sales and website logins, 1 January 2025 – 31 December 2025. Built 4 May 2026, 10:15 UTC.",
    "Monthly sales", "Top 10 products by sales", "Top 10 countries by logged-in users", "Top 5 devices of logged-in users",
    "Top 10 products bought by customers in US, the country with most logged-in users",
    "How much did we sell each month, and how many orders was that?",
    "Which products bring in the most sales?",
    "In which countries are the customers who log in to the website (by the location of their IP address)?",
    "On which devices do customers log in, so the website works best where it is used?",
    "What do customers in US, where most of our website users log in, buy most?",
    "Execution sequence 6. The CSV files keep the queries' column names and unformatted values.",
]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is installed by scripts/test.sh")
def test_dashboard_reads_like_a_business_report_in_headless_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    dashboard = write_outputs(sample_results(), tmp_path / "reports", "Execution sequence 6", built=BUILT)
    shot = tmp_path / "dashboard.png"
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
        page.screenshot(path=str(shot), full_page=True)
        title = page.title()
        headings = page.eval_on_selector_all("h1, h2", "els => els.map(e => e.innerText)")
        headers = page.eval_on_selector_all(
            "section", "els => els.map(s => Array.from(s.querySelectorAll('th')).map(th => th.innerText))")
        first_rows = page.eval_on_selector_all(
            "section", "els => els.map(s => Array.from(s.querySelectorAll('tbody tr:first-child td')).map(td => td.innerText))")
        align = page.evaluate("getComputedStyle(document.querySelector('#sql_monthly_sales td:nth-child(4)')).textAlign")
        text = page.inner_text("body")
        browser.close()
    print(f"dashboard screenshot: {shot}")
    assert [src for src, _, _ in images] == [f"{name}.png" for name in READING_ORDER]
    assert all(loaded and height > 100 for _, loaded, height in images), images
    assert problems == [] and failed == []
    assert title == "Sales 2025"
    assert headings == ["Sales 2025", "Monthly sales", "Top 10 products by sales", "Top 10 countries by logged-in users",
                        "Top 10 products bought by customers in US, the country with most logged-in users",
                        "Top 5 devices of logged-in users"]
    for expected in TEXTS:
        assert expected in text, expected
    products = ["Rank", "Product", "Product code", "Supplier", "Supplier ID", "Quantity", "Sales"]
    assert headers == [["Month", "Orders", "Quantity", "Sales"], products, ["Rank", "Country", "Logged-in users", "Logins"],
                       products, ["Device", "Logins", "Logged-in users"]]
    assert first_rows == [["January 2025", "437", "9,310", "1,123,456.89"],
                          ["1", "Stainless steel valve DN50", "P000150", "Acme Industrial Supplies", "1", "1,234", "2,345,678.50"],
                          ["1", "US", "1,912", "19,090"],
                          ["1", "Copper pipe 15 mm, 5 m", "P000042", "Pipes & Fittings Ltd", "3", "5,321", "76,543.21"],
                          ["Windows", "15,230", "912"]]
    assert align == "right"
    assert 'Valve <"quoted"> & Co' in text  # escaped, shown as text
    assert "CO00002" in text  # a string supplier id beside a numeric one; the NULL name is an empty cell
    for scientific in ("e+0", "E+0", "1e6", "1e+06"):
        assert scientific not in text
    assert "period_start" not in text and "2025-01-01" not in text  # the period is in words, once, in the title
    assert shot.stat().st_size > 50_000
