"""Create and fill the sample B2B order database in MySQL/MariaDB, or simulate a day of changes.

Sizes at ``scale`` 1 (DESIGN.md): 2,000 companies, 50,000 customers, 20,000 products,
100,000 product prices, 250,000 orders with ~1,000,000 order lines. The generator is
deterministic for a given ``seed`` and day. Data is consistent (suppliers are companies
flagged ``is_supplier``, ``line_total = unit_price * quantity``, header ``total`` = sum of
its lines, ISO 3166 alpha-2 countries, orders from 1 January two years ago until today)
and deliberately includes hard values: quotes, commas, tabs, newlines, backslashes, the
strings ``NULL`` and ``\\N``, non-ASCII names, NULLs in optional columns, empty strings and
soft-deleted rows. All datetimes are UTC.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

log = logging.getLogger(__name__)

TABLE_DDL = {
    "companies": """CREATE TABLE companies (
        company_id INT NOT NULL,
        company_name VARCHAR(200) NOT NULL,
        country CHAR(2) NOT NULL,
        is_supplier TINYINT(1) NOT NULL DEFAULT 0,
        created_datetime DATETIME NOT NULL,
        updated_datetime DATETIME NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        PRIMARY KEY (company_id),
        KEY ix_companies_updated (updated_datetime))""",
    "customers": """CREATE TABLE customers (
        customer_document_no VARCHAR(20) NOT NULL,
        customer_full_name VARCHAR(200) NOT NULL,
        username VARCHAR(64) NOT NULL,
        date_of_birth DATE NULL,
        address_line_1 VARCHAR(200) NOT NULL,
        address_line_2 VARCHAR(200) NULL,
        address_line_3 VARCHAR(200) NULL,
        city VARCHAR(100) NOT NULL,
        state VARCHAR(100) NULL,
        country CHAR(2) NOT NULL,
        post_code VARCHAR(20) NULL,
        created_datetime DATETIME NOT NULL,
        updated_datetime DATETIME NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        PRIMARY KEY (customer_document_no),
        UNIQUE KEY uq_customers_username (username),
        KEY ix_customers_updated (updated_datetime))""",
    "products": """CREATE TABLE products (
        product_code VARCHAR(20) NOT NULL,
        supplier_id INT NOT NULL,
        product_name VARCHAR(200) NOT NULL,
        default_price DECIMAL(10,2) NOT NULL,
        created_datetime DATETIME NOT NULL,
        updated_datetime DATETIME NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        PRIMARY KEY (product_code, supplier_id),
        KEY ix_products_updated (updated_datetime))""",
    "product_prices": """CREATE TABLE product_prices (
        product_code VARCHAR(20) NOT NULL,
        selling_company_id INT NOT NULL,
        price DECIMAL(10,2) NOT NULL,
        created_datetime DATETIME NOT NULL,
        updated_datetime DATETIME NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        PRIMARY KEY (product_code, selling_company_id),
        KEY ix_product_prices_updated (updated_datetime))""",
    "order_headers": """CREATE TABLE order_headers (
        order_no VARCHAR(20) NOT NULL,
        order_date DATE NOT NULL,
        company_id INT NOT NULL,
        customer_document_no VARCHAR(20) NOT NULL,
        total DECIMAL(20,4) NOT NULL,
        created_datetime DATETIME NOT NULL,
        updated_datetime DATETIME NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        PRIMARY KEY (order_no),
        KEY ix_order_headers_updated (updated_datetime))""",
    "order_lines": """CREATE TABLE order_lines (
        order_no VARCHAR(20) NOT NULL,
        order_line_no INT NOT NULL,
        order_date DATE NOT NULL,
        product_code VARCHAR(20) NOT NULL,
        supplier_id INT NOT NULL,
        unit_price DECIMAL(10,2) NOT NULL,
        quantity INT NOT NULL,
        line_total DECIMAL(20,4) NOT NULL,
        created_datetime DATETIME NOT NULL,
        updated_datetime DATETIME NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        PRIMARY KEY (order_no, order_line_no),
        KEY ix_order_lines_updated (updated_datetime))""",
}
TABLES = tuple(TABLE_DDL)
TABLE_OPTIONS = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"

COUNTRIES = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "IN", "CN", "JP", "AU", "CA", "MX", "PL", "SE", "TR", "ZA", "NG", "KR")
COUNTRY_WEIGHTS = (20, 9, 9, 7, 5, 5, 4, 5, 6, 5, 4, 3, 4, 3, 3, 2, 2, 2, 1, 1)
FIRST_NAMES = ("Anna", "James", "María", "Jürgen", "Zoë", "Łukasz", "Søren", "Chloé", "Mohammed", "Wei", "Yuki",
               "Olga", "Seán", "Ana-Lucía", "Nguyễn", "Priya", "João", "Fatma", "Kwame", "Ingrid", "D'Arcy", "Émile")
LAST_NAMES = ("Smith", "García", "Müller", "O'Brien", "Kowalski", "Ødegaard", "Dubois", "Rossi", "Tanaka", "Chen",
              "Ivanova", "Ní Bhriain", "Silva", "Yılmaz", "Mensah", "Nakamura", "van der Berg", "Öztürk", "Đorđević")
NAME_WORDS = ("Global", "Acme", "Northern", "Blue", "Prime", "Atlas", "Nova", "Delta", "Summit", "Union", "Pacific",
              "Alpine", "Nordic", "Iberia", "Sakura", "Golden", "Rapid", "Vertex", "Harbor", "Lumen")
COMPANY_SUFFIXES = ("Ltd.", "GmbH", "S.A.", "Inc.", "B.V.", "AB", "S.p.A.", "K.K.", "Pty Ltd", "LLC", "Sp. z o.o.")
PRODUCT_NOUNS = ("Widget", "Bracket", "Valve", "Cable", "Sensor", "Panel", "Bearing", "Gasket", "Pump", "Filter",
                 "Switch", "Relay", "Hinge", "Clamp", "Nozzle", "Adapter", "Spring", "Bolt", "Motor", "Fuse")
PRODUCT_ADJECTIVES = ("Heavy-duty", "Compact", "Stainless", "Industrial", "Mini", "Pro", "Eco", "Ultra", "Standard")
CITIES = ("Springfield", "München", "São Paulo", "Kraków", "Zürich", "Malmö", "İstanbul", "Île-de-France",
          "Tokyo", "Cape Town", "Lagos", "Toronto", "Seoul", "Sydney", "Porto", "Ciudad de México")
STREETS = ("Main Street", "Hauptstraße", "Rue de la Paix", "Calle Mayor", "Via Roma", "Ulica Długa", "Strandvägen")
# Values that break naive CSV / COPY handling; each must round-trip exactly.
HARD_STRINGS = (
    'O\'Brien & "Sons", Ltd.',
    "Back\\slash \\N Trading",
    "Line\nBreak GmbH",
    "Carriage\r\nReturn Inc.",
    "Tab\tSeparated AB",
    "Comma, Comma, Comma",
    "NULL",
    "\\N",
    "  padded  ",
    "東京商事株式会社",
    "Ærøskøbing Søfart ApS",
    'Quote "" doubled',
    "Emoji 🚚 Logistics",
)


@dataclass
class Sizes:
    """Row counts per table for one scale."""

    companies: int
    customers: int
    products: int
    product_prices: int
    orders: int

    @classmethod
    def for_scale(cls, scale: float) -> "Sizes":
        """Sizes for ``scale`` (1 = DESIGN.md sizes), with small minimums so tiny scales stay consistent."""
        return cls(
            companies=max(10, round(2_000 * scale)),
            customers=max(20, round(50_000 * scale)),
            products=max(20, round(20_000 * scale)),
            product_prices=max(20, round(100_000 * scale)),
            orders=max(20, round(250_000 * scale)),
        )


def utc_now() -> datetime:
    """Current UTC time, naive, whole seconds (DATETIME precision)."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def first_order_date(today: date) -> date:
    """1 January two years before ``today``."""
    return date(today.year - 2, 1, 1)


class Generator:
    """Deterministic row generator for one seed; rows are tuples in TABLE_DDL column order."""

    def __init__(self, seed: int, now: datetime):
        self.rng = random.Random(seed)
        self.now = now
        self.start = datetime.combine(first_order_date(now.date()), datetime.min.time())

    def _text(self, normal: str, every: int = 40) -> str:
        if self.rng.randrange(every) == 0:
            return self.rng.choice(HARD_STRINGS)
        return normal

    def _stamps(self, earliest: datetime) -> tuple[datetime, datetime]:
        span = max(1, int((self.now - earliest).total_seconds()) - 3600)
        created = earliest + timedelta(seconds=self.rng.randrange(span))
        updated = min(created + timedelta(seconds=self.rng.randrange(30 * 86400)), self.now - timedelta(hours=1))
        return created, max(created, updated)

    def _deleted(self) -> int:
        return 1 if self.rng.random() < 0.02 else 0

    def companies(self, n: int) -> list[tuple]:
        """``n`` company rows, ids 1..n; about a third (and always companies 1-3) are suppliers."""
        rows = []
        for company_id in range(1, n + 1):
            name = f"{self.rng.choice(NAME_WORDS)} {self.rng.choice(NAME_WORDS)} {self.rng.choice(COMPANY_SUFFIXES)}"
            country = self.rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0]
            created, updated = self._stamps(self.start - timedelta(days=365))
            # about a third are suppliers, and companies 1-3 always are
            is_supplier = 1 if company_id <= 3 or self.rng.random() < 0.35 else 0
            rows.append((company_id, self._text(name), country, is_supplier, created, updated, self._deleted()))
        return rows

    def customers(self, n: int) -> list[tuple]:
        """``n`` customer rows (document numbers CD00000001..), unique usernames, optional columns NULL or empty."""
        rows = []
        for i in range(1, n + 1):
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            r = self.rng.random()
            address_2 = None if r < 0.4 else ("" if r < 0.5 else f"Suite {self.rng.randrange(1, 900)}")
            r = self.rng.random()
            address_3 = None if r < 0.8 else ("" if r < 0.85 else self._text("c/o Reception", 5))
            dob = None if self.rng.random() < 0.05 else date(1940, 1, 1) + timedelta(days=self.rng.randrange(25_000))
            created, updated = self._stamps(self.start - timedelta(days=365))
            rows.append((
                f"CD{i:08d}",
                self._text(f"{first} {last}"),
                f"{_ascii(first)}.{_ascii(last)}.{i}".lower(),
                dob,
                f"{self.rng.randrange(1, 999)} {self.rng.choice(STREETS)}",
                address_2,
                address_3,
                self.rng.choice(CITIES),
                None if self.rng.random() < 0.3 else self.rng.choice(("CA", "NY", "Bayern", "Île-de-France", "")),
                self.rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0],
                None if self.rng.random() < 0.1 else f"{self.rng.randrange(10000, 99999)}",
                created,
                updated,
                self._deleted(),
            ))
        return rows

    def products(self, n: int, supplier_ids: list[int]) -> list[tuple]:
        """``n`` distinct (product_code, supplier_id) rows; ~20% of codes are sold by two suppliers."""
        rows = []
        codes = max(1, int(n * 0.8))  # ~20% of codes are offered by a second supplier
        n = min(n, codes * len(supplier_ids))  # never ask for more distinct pairs than exist
        seen = set()
        while len(rows) < n:
            code = f"P{self.rng.randrange(codes) + 1:06d}"
            supplier = self.rng.choice(supplier_ids)
            if (code, supplier) in seen:
                continue
            seen.add((code, supplier))
            name = f"{self.rng.choice(PRODUCT_ADJECTIVES)} {self.rng.choice(PRODUCT_NOUNS)} {code[-3:]}"
            price = Decimal(self.rng.randrange(99, 250_000)) / 100
            created, updated = self._stamps(self.start - timedelta(days=200))
            rows.append((code, supplier, self._text(name, 60), price, created, updated, self._deleted()))
        return rows

    def product_prices(self, n: int, products: list[tuple], company_ids: list[int]) -> list[tuple]:
        """Up to ``n`` distinct (product_code, selling_company_id) prices within ±20% of the default price."""
        default = {}
        for code, _supplier, _name, price, *_ in products:
            default.setdefault(code, price)
        codes = sorted(default)
        n = min(n, len(codes) * len(company_ids))
        rows, seen = [], set()
        while len(rows) < n:
            code, seller = self.rng.choice(codes), self.rng.choice(company_ids)
            if (code, seller) in seen:
                continue
            seen.add((code, seller))
            price = (default[code] * Decimal(self.rng.randrange(80, 121)) / 100).quantize(Decimal("0.01"))
            created, updated = self._stamps(self.start - timedelta(days=200))
            rows.append((code, seller, max(price, Decimal("0.01")), created, updated, self._deleted()))
        return rows

    def orders(self, first_no: int, n: int, ctx: "OrderContext", order_dates: tuple[date, date] | None = None, fresh: bool = False):
        """Yield ``(header, lines)`` for ``n`` orders numbered from ``first_no``.

        ``order_dates`` bounds the order date (default: the whole history); ``fresh`` stamps
        created/updated with ``now`` (a day of new activity).
        """
        lo, hi = order_dates or (self.start.date(), self.now.date())
        days = (hi - lo).days + 1
        for k in range(n):
            order_no = f"SO{first_no + k:08d}"
            order_date = lo + timedelta(days=self.rng.randrange(days))
            seller = self.rng.choice(ctx.company_ids)
            customer = self.rng.choice(ctx.customer_nos)
            if fresh:
                created = updated = self.now
            else:
                created = datetime.combine(order_date, datetime.min.time()) + timedelta(seconds=self.rng.randrange(86400))
                created = min(created, self.now - timedelta(hours=1))
                updated = min(created + timedelta(seconds=self.rng.randrange(3 * 86400)), self.now - timedelta(hours=1))
            deleted = self._deleted()
            lines, total = [], Decimal(0)
            for line_no in range(1, self.rng.choice((1, 2, 3, 3, 4, 4, 5, 5, 6, 7)) + 1):
                code, supplier, default_price = self.rng.choice(ctx.products)
                unit_price = ctx.prices.get((code, seller), default_price)
                quantity = self.rng.randrange(1, 21)
                line_total = (unit_price * quantity).quantize(Decimal("0.0001"))
                total += line_total
                line_deleted = 1 if deleted or self.rng.random() < 0.005 else 0
                lines.append((order_no, line_no, order_date, code, supplier, unit_price, quantity, line_total,
                              created, updated, line_deleted))
            yield (order_no, order_date, seller, customer, total, created, updated, deleted), lines


@dataclass
class OrderContext:
    """What order generation draws from: sellers, customers, products and seller prices."""

    company_ids: list[int]
    customer_nos: list[str]
    products: list[tuple]  # (product_code, supplier_id, default_price)
    prices: dict  # (product_code, selling_company_id) -> price


def _ascii(name: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded if ch.isalnum()) or "user"
