"""Report results shaped as sql/reports returns them, for the dashboard tests (unit: charts and page; integration:
Chromium). Amounts are in the millions, where matplotlib's default axis would say 1e6."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from etl.reports import ReportResult

PERIOD = (date(2025, 1, 1), date(2025, 12, 31))
BUILT = datetime(2026, 5, 4, 10, 15, tzinfo=timezone.utc)
PRODUCT_COLUMNS = ["rank", "product_code", "supplier_id", "product_name", "supplier_name", "total_quantity",
                   "total_amount", "period_start", "period_end"]


def sample_results(period: tuple[date, date] = PERIOD) -> list[ReportResult]:
    """The five reports of one year (``period``: every row's period_start, period_end); the top login country is US."""
    monthly = [(f"{period[0].year}-{m:02d}", 400 + m * 37, 9000 + m * 310, Decimal(1_000_000 + m * 123_456) + Decimal("0.89"))
               for m in range(1, 13)]
    products = [(1, "P000150", 1, "Stainless steel valve DN50", "Acme Industrial Supplies", 1234, Decimal("2345678.5")),
                (2, "P000007", "CO00002", 'Valve <"quoted"> & Co', "Nine Supplies", 800, Decimal("1500000.00")),
                (3, "P000151", 1, None, None, 120, Decimal("99.99"))]
    in_country = [("US", 1, "P000042", 3, "Copper pipe 15 mm, 5 m", "Pipes & Fittings Ltd", 5321, Decimal("76543.21")),
                  ("US", 2, "P000150", 1, "Stainless steel valve DN50", "Acme Industrial Supplies", 4100, Decimal("812000"))]
    return [
        ReportResult("sql_monthly_sales", ["year_month", "order_count", "total_quantity", "total_amount", "period_start",
                                           "period_end"], [row + period for row in monthly]),
        ReportResult("sql_top_5_most_used_devices", ["device", "request_count", "user_count", "period_start", "period_end"],
                     [row + period for row in [("Windows", 15230, 912), ("iPhone", 12040, 733), ("Android", 9030, 611),
                                               ("Macintosh", 4010, 312), ("iPad", 1500, 120)]]),
        ReportResult("sql_top_login_countries", ["rank", "country", "user_count", "request_count", "period_start",
                                                 "period_end"],
                     [row + period for row in [(1, "US", 1912, 19090), (2, "GB", 1500, 14000), (3, "DE", 1400, 14100)]]),
        ReportResult("sql_top_10_revenue_products", PRODUCT_COLUMNS, [row + period for row in products]),
        ReportResult("sql_most_popular_products_from_country_with_most_logins", ["country"] + PRODUCT_COLUMNS,
                     [row + period for row in in_country]),
    ]
