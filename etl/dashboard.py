"""The dashboard for business users: report results as pandas frames, charts (matplotlib) and ``dashboard.html``.

``etl.reports`` runs the queries and writes the CSV files (the queries' column names and
unformatted values, for scripts and spreadsheets); this module presents the same results
in words: a title with the period the reports cover (their own ``period_start`` and
``period_end`` columns, e.g. "Sales 2025") and when the page was built, column headers in
words, amounts with thousands separators and two decimals, counts as integers, product
names beside their codes, the top login country named, and under each chart the business
question it answers. The page references its charts by relative path and has no external
resources, so it opens from disk with no network access.

Amounts are in the source's own currency, which the data model does not record, so they
are headed "Sales" with no currency sign.
"""

from __future__ import annotations

import hashlib
import html
import json
import textwrap
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from etl import private
from etl.markers import write_json_atomic

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
PERIOD_COLUMNS = ("period_start", "period_end")
TOP_COUNTRY_REPORT = "sql_most_popular_products_from_country_with_most_logins"
COUNTRIES_REPORT = "sql_top_login_countries"

# query column -> (header in words, kind); kinds: text, count (integer), quantity (integer or two decimals),
# amount (two decimals), month (YYYY-MM), date
COLUMNS = {
    "year_month": ("Month", "month"),
    "order_count": ("Orders", "count"),
    "total_quantity": ("Quantity", "quantity"),
    "total_amount": ("Sales", "amount"),
    "device": ("Device", "text"),
    "request_count": ("Logins", "count"),
    "user_count": ("Logged-in users", "count"),
    "country": ("Country", "text"),
    "rank": ("Rank", "count"),
    "product_name": ("Product", "text"),
    "product_code": ("Product code", "text"),
    "supplier_name": ("Supplier", "text"),
    "supplier_id": ("Supplier ID", "text"),
    "period_start": ("From", "date"),
    "period_end": ("To", "date"),
}
PRODUCT_COLUMNS = ("rank", "product_name", "product_code", "supplier_name", "supplier_id", "total_quantity", "total_amount")


@dataclass(frozen=True)
class View:
    """How one report is presented: section title, the question its chart answers (both may name
    ``{country}``; ``no_country``: both when no country is known), the chart's label columns and value
    column, bar direction, and the table's columns in display order (None: the query's, less the
    period columns)."""

    title: str
    question: str
    labels: tuple[str, ...]
    value: str
    horizontal: bool = False
    columns: tuple[str, ...] | None = None
    no_country: tuple[str, str] = ("", "")

    def words(self, country: str | None) -> tuple[str, str]:
        """(title, question) naming ``country``, or the no-country versions when it is None."""
        if country is None and "{country}" in self.title + self.question:
            return self.no_country
        return self.title.replace("{country}", str(country)), self.question.replace("{country}", str(country))


# in the page's reading order: sales, products, where the users are, what the top country buys, devices
VIEWS = {
    "sql_monthly_sales": View(
        "Monthly sales", "How much did we sell each month, and how many orders was that?",
        ("year_month",), "total_amount"),
    "sql_top_10_revenue_products": View(
        "Top 10 products by sales", "Which products bring in the most sales?",
        ("product_name", "product_code"), "total_amount", True, PRODUCT_COLUMNS),
    "sql_top_login_countries": View(
        "Top 10 countries by logged-in users",
        "In which countries are the customers who log in to the website (by the location of their IP address)?",
        ("country",), "user_count"),
    TOP_COUNTRY_REPORT: View(
        "Top 10 products bought by customers in {country}, the country with most logged-in users",
        "What do customers in {country}, where most of our website users log in, buy most?",
        ("product_name", "product_code"), "total_quantity", True, PRODUCT_COLUMNS,
        ("Top 10 products bought by customers in the country with most logged-in users",
         "What do customers in the country where most of our website users log in buy most?")),
    "sql_top_5_most_used_devices": View(
        "Top 5 devices of logged-in users", "On which devices do customers log in, so the website works best where it is used?",
        ("device",), "request_count"),
}


def view_of(name: str, columns: list[str]) -> View:
    """The report's View; a report this module does not know gets its file name as title and its
    first and last columns as chart labels and values."""
    return VIEWS.get(name) or View(name, "", (columns[0],), columns[-1])


def header(column: str) -> str:
    """A query column's header in words (an unknown column: its name with spaces, capitalised)."""
    return COLUMNS.get(column, (column.replace("_", " ").capitalize(), ""))[0]


def kind_of(column: str, values) -> str:
    """The column's kind (see COLUMNS); an unknown column's from its values' Python types: integers count,
    other numbers amount, anything else (also numbers read back from a CSV file as text) text."""
    if column in COLUMNS:
        return COLUMNS[column][1]
    known = [v for v in values if v is not None and v != ""]
    if known and all(isinstance(v, int) and not isinstance(v, bool) for v in known):
        return "count"
    if known and all(isinstance(v, (Decimal, float)) for v in known):
        return "amount"
    return "text"


def _number(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None


def _typed(kind: str, value):
    """A value (from the warehouse, or read back from a CSV file as text) in its kind's Python type."""
    if value is None or (value == "" and kind != "text"):
        return None
    if kind in ("count", "quantity", "amount"):
        number = _number(value)
        return int(number) if kind == "count" and number is not None and number == number.to_integral_value() else number
    if kind == "date":
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return value


def frame(result):
    """The result as a pandas DataFrame, each column in its kind's type (Decimal amounts, int counts, dates).

    ``result`` has ``name``, ``columns`` and ``rows`` (an ``etl.reports.ReportResult``); its rows may come
    from the warehouse or from a previous run's CSV file (all text): both give the same frame.
    """
    import pandas as pd

    df = pd.DataFrame(list(result.rows), columns=list(result.columns), dtype=object)
    for column in df.columns:
        kind = kind_of(column, df[column].tolist())
        df[column] = pd.Series([_typed(kind, v) for v in df[column]], index=df.index, dtype=object)
    return df


def long_date(day: date) -> str:
    """``1 January 2025``."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def format_value(kind: str, value) -> str:
    """One cell as a business user reads it: amounts ``1,234,567.89``, counts ``1,234``, months
    ``March 2025``, dates ``1 January 2025``, text with its whitespace runs as one space; NULL as an empty cell."""
    if value is None or value == "":
        return ""
    if kind in ("count", "quantity", "amount"):
        number = _number(value)
        if number is None or not number.is_finite():
            return str(value)  # not a number after all: shown as it is
        if kind == "amount" or number != number.to_integral_value():
            return f"{number:,.2f}"
        return f"{int(number):,}"
    if kind == "month":
        year, month = str(value).split("-")[:2]
        return f"{MONTHS[int(month) - 1]} {year}"
    if kind == "date":
        return long_date(_typed("date", value))
    return " ".join(str(value).split())  # as a browser shows text: a newline or tab in a name is a space


def period_words(start: date, end: date) -> str:
    """``2025`` for a calendar year, ``January – June 2025`` for whole months of one year, else
    ``1 March 2025 – 28 February 2026``."""
    whole_months = start.day == 1 and date.fromordinal(end.toordinal() + 1).day == 1
    if whole_months and start.year == end.year:
        if (start.month, end.month) == (1, 12):
            return str(start.year)
        if start.month == end.month:
            return f"{MONTHS[start.month - 1]} {start.year}"
        return f"{MONTHS[start.month - 1]} – {MONTHS[end.month - 1]} {start.year}"
    return f"{long_date(start)} – {long_date(end)}"


def period_of(df) -> tuple[date, date] | None:
    """The (first, last) day a report's frame covers, from its period columns (None: no rows or no such columns)."""
    if len(df) == 0 or not all(c in df.columns for c in PERIOD_COLUMNS):
        return None
    starts, ends = df["period_start"].dropna(), df["period_end"].dropna()
    return (min(starts), max(ends)) if len(starts) and len(ends) else None


def built_words(built: datetime) -> str:
    """``4 May 2026, 10:15 UTC`` (another zone: ``4 May 2026, 12:15 CEST (UTC+02:00)``); ``built`` must be aware."""
    zone = built.tzname() or ""
    offset = built.strftime("%z")
    text = f"{long_date(built.date())}, {built:%H:%M} {zone}".rstrip()
    if offset not in ("+0000", "") or not zone:
        text += f" (UTC{offset[:3]}:{offset[3:]})"
    return text


def top_country(results: dict) -> str | None:
    """The country with most logged-in users: from the top-country products report's rows, else
    rank 1 of the countries report (the same rule: sql/reports); None when neither has rows."""
    for name, column in ((TOP_COUNTRY_REPORT, "country"), (COUNTRIES_REPORT, "country")):
        result = results.get(name)
        if result is not None and result.rows and column in result.columns:
            value = result.rows[0][result.columns.index(column)]
            if value not in (None, ""):
                return str(value)
    return None


def _chart_labels(df, view: View) -> list[str]:
    """One label per row: the label columns' values, a product as ``Name (code)``; labels that would
    repeat (one code from two suppliers) get the supplier appended."""
    labels = []
    for _, row in df.iterrows():
        if view.labels == ("product_name", "product_code"):
            name, code = row.get("product_name"), row.get("product_code")
            name = textwrap.shorten(str(name), 38, placeholder="…") if name not in (None, "") else ""
            labels.append(f"{name} ({code})" if name else str(code))
        else:
            labels.append(" / ".join(format_value(kind_of(c, [row[c]]), row[c]) for c in view.labels))
    if len(set(labels)) < len(labels) and "supplier_id" in df.columns:
        suppliers = [r.get("supplier_name") or r.get("supplier_id") for _, r in df.iterrows()]
        labels = [f"{label} · {supplier}" for label, supplier in zip(labels, suppliers)]
    return labels


# data in labels is text, never mathtext ("$5 $10" stays as it is); no offset notation on any axis
CHART_RC = {"text.parse_math": False, "axes.formatter.useoffset": False}


def chart(result):
    """The report's chart as a matplotlib Figure (not shown, not registered with pyplot: freed with it): bars
    of its value column, the value axis in plain numbers with thousands separators (never ``1e6``), labels
    in words, the period in the title."""
    import matplotlib

    matplotlib.use("Agg")
    with matplotlib.rc_context(CHART_RC):
        return _chart(result)


def _chart(result):
    # a bare Figure (its own Agg canvas): no pyplot, whose import alone cost 0.26 s of the reports step
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    df = frame(result)
    view = view_of(result.name, list(df.columns))
    labels = _chart_labels(df, view)
    if view.labels == ("year_month",) and len(df) and len({str(v)[:4] for v in df["year_month"]}) == 1:
        labels = [label.split(" ")[0][:3] for label in labels]  # one year: Jan .. Dec, the year in the title
    values = [float(v) if v is not None else 0.0 for v in df[view.value]] if view.value in df.columns else []
    kind = kind_of(view.value, values)
    top = max(values, default=0)
    decimals = kind == "amount" and 0 < top < 10
    axis = FuncFormatter(lambda x, _pos: f"{x:,.2f}" if decimals else f"{x:,.0f}")
    height = max(2.6, 1.4 + 0.42 * len(values)) if view.horizontal else 4.2  # bars of one thickness
    fig = Figure(figsize=(9, height), dpi=100)
    ax = fig.subplots()
    positions = list(range(len(values)))
    if view.horizontal:
        ax.barh(positions, values, color="#3b6ea5")
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()  # rank 1 on top
        ax.xaxis.set_major_formatter(axis)
        ax.set_xlabel(header(view.value))
        if kind != "amount":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))
        ax.bar_label(ax.containers[0], labels=[format_value(kind, v) for v in df[view.value]], padding=3, fontsize=8)
        ax.margins(x=0.15)
    else:
        ax.bar(positions, values, color="#3b6ea5")
        crowded = len(labels) * max(map(len, labels), default=0) > 70  # labels would touch: slant them
        ax.set_xticks(positions, labels, rotation=30 if crowded else 0, ha="right" if crowded else "center")
        ax.yaxis.set_major_formatter(axis)
        ax.set_ylabel(header(view.value))
        if kind != "amount":
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if not values:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No data for this period", ha="center", va="center", transform=ax.transAxes)
    period = period_of(df)
    title = view.words(top_country({result.name: result}))[0]
    fig.suptitle(textwrap.fill(title + (f", {period_words(*period)}" if period else ""), 100), x=0.01, ha="left",
                 fontsize=11)
    fig.tight_layout()
    return fig


def write_chart(result, path: Path) -> None:
    """Draw the report's chart (:func:`chart`) as a PNG at ``path``, private like every report file."""
    import matplotlib

    fig = chart(result)
    private.make_dirs(path.parent)
    with private.open_private(path, "wb") as handle, matplotlib.rc_context(CHART_RC):
        fig.savefig(handle, format="png")


def table_html(df, view: View, section: str, hide: tuple[str, ...] = ()) -> tuple[str, str]:
    """The report's rows as an HTML table (pandas ``to_html``, escaped) and the CSS that right-aligns its
    number columns (under ``#<section>``): headers in words, values formatted; the period columns (in the
    page's words instead) and ``hide`` left out."""
    wanted = view.columns or tuple(df.columns)
    columns = [c for c in wanted if c in df.columns and c not in PERIOD_COLUMNS and c not in hide]
    shown = df[columns].copy()
    kinds = {c: kind_of(c, df[c].tolist()) for c in columns}
    for column in columns:
        shown[column] = [format_value(kinds[column], v) for v in df[column]]
    shown.columns = [header(c) for c in columns]
    numeric = [i + 1 for i, c in enumerate(columns) if kinds[c] in ("count", "quantity", "amount")]
    table = shown.to_html(index=False, escape=True, border=0, classes="report", justify="left")
    style = "".join(f"#{section} td:nth-child({i}),#{section} th:nth-child({i}){{text-align:right}}" for i in numeric)
    return table, style


STYLE = ("body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}"
         "h1{margin-bottom:.2em}p.built{color:#555;margin-top:0}section{margin:2.5em 0}"
         "p.question{font-style:italic;color:#333;margin:.3em 0 1em}"
         "table.report{border-collapse:collapse;font-size:.92em}table.report td,table.report th{border-bottom:1px solid #ddd;"
         "padding:4px 10px;text-align:left}table.report th{background:#eef2f8}"
         "img{max-width:100%;display:block;margin:.5em 0}p.csv,p.footnote{font-size:.8em;color:#666}")


SECTIONS_FILE = "dashboard.sections.json"
"""Beside ``dashboard.html``: what the page shows apart from when it was built and its footnote, with the
key of the report files and code it was made from (see :func:`write_dashboard`)."""


def _sections_key(results: list, folder: Path) -> str | None:
    """SHA-256 of this module's code and of each report's CSV file in ``folder`` (in the results' order),
    or None when a CSV file is missing (nothing to compare with)."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for result in results:
        try:
            data = (folder / f"{result.name}.csv").read_bytes()
        except OSError:
            return None
        digest.update(b"\0" + result.name.encode() + b"\0" + data)
    return digest.hexdigest()


def _saved_sections(previous: Path, key: str) -> dict | None:
    """The sections saved beside the dashboard in ``previous`` when they were made under ``key``, else None
    (none saved, another key, an unreadable file)."""
    try:
        saved = json.loads((previous / SECTIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    sections = saved.get("sections")
    fields = {"title": str, "scope": str, "styles": list, "parts": list}
    if not isinstance(sections, dict) or any(not isinstance(sections.get(k), t) for k, t in fields.items()):
        return None
    return sections


def _sections(results: list) -> dict:
    """What the page shows from the results (pandas frames): ``title``, ``scope`` (the period line's
    text), ``styles`` (CSS) and ``parts`` (the HTML of each report's section)."""
    by_name = {r.name: r for r in results}
    country = top_country(by_name)
    frames = {r.name: frame(r) for r in results}
    periods = [p for p in (period_of(df) for df in frames.values()) if p]
    period = (min(p[0] for p in periods), max(p[1] for p in periods)) if periods else None
    title = f"Sales {period_words(*period)}" if period else "Sales"
    scope = f"Sales and website logins, {long_date(period[0])} – {long_date(period[1])}" if period else \
        "No report returned rows"
    parts, styles = [], [STYLE]
    order = list(VIEWS)
    for result in sorted(results, key=lambda r: order.index(r.name) if r.name in order else len(order)):
        df, view = frames[result.name], view_of(result.name, list(result.columns))
        heading, question = view.words(country)
        own = period_of(df)
        name = html.escape(result.name)
        parts.append(f"<section id='{name}'><h2>{html.escape(heading)}</h2>")
        if own and own != period:
            parts.append(f"<p>{html.escape(long_date(own[0]))} – {html.escape(long_date(own[1]))}</p>")
        parts.append(f"<img src='{name}.png' alt='{html.escape(heading)} chart'>")
        if question:
            parts.append(f"<p class='question'>{html.escape(question)}</p>")
        if len(df):
            table, style = table_html(df, view, name, ("country",) if result.name == TOP_COUNTRY_REPORT else ())
            parts.append(table)
            styles.append(style)
        else:
            parts.append("<p>No data for this period.</p>")
        parts.append(f"<p class='csv'>Data: <a href='{name}.csv'>{name}.csv</a></p></section>")
    return {"title": title, "scope": scope, "styles": styles, "parts": parts}


def write_dashboard(results: list, folder: Path, note: str = "", built: datetime | None = None,
                    previous: Path | None = None) -> Path:
    """Write ``<folder>/dashboard.html`` from the report results (``etl.reports.ReportResult``); returns its path.

    The title names the period the reports cover (from their period columns; "Sales" alone when no
    report returned rows), a line says when it was built (``built``, default now, in the machine's
    time zone); each report gets a section, in the order of VIEWS (reports it does not know last):
    heading, chart (relative ``<img>``), the question the chart answers, the table and a link to
    its CSV. ``note`` (e.g. the execution sequence) is the footnote.

    The sections are saved beside the page (:data:`SECTIONS_FILE`, keyed by the report CSV files
    in ``folder`` and this module's code). With ``previous`` (an earlier sequence's folder) whose
    sections have the same key - every CSV byte for byte the same - they are reused: only the
    built line and the footnote are new, and pandas is not imported (0.3 s of a no-op run).
    """
    built = built or datetime.now().astimezone()
    key = _sections_key(results, folder)
    sections = _saved_sections(previous, key) if previous is not None and key is not None else None
    if sections is None:
        sections = _sections(results)
    private.make_dirs(folder)
    if key is not None:
        write_json_atomic(folder / SECTIONS_FILE, {"key": key, "sections": sections})
    footnote = "The CSV files keep the queries' column names and unformatted values."
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>{html.escape(sections['title'])}</title><style>{''.join(sections['styles'])}</style></head><body>",
             f"<h1>{html.escape(sections['title'])}</h1>",
             f"<p class='built'>{html.escape(sections['scope'])}. Built {html.escape(built_words(built))}.</p>",
             *sections["parts"],
             f"<p class='footnote'>{html.escape(note + '. ' if note else '')}{footnote}</p></body></html>"]
    path = folder / "dashboard.html"
    with private.open_private(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(parts))
    return path
