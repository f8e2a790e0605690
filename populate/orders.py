"""Create and fill the sample B2B order database in MySQL/MariaDB, or simulate a day of changes.

Sizes at ``scale`` 1 (docs/sample-data.md): 2,000 companies, 50,000 customers, 20,000 products,
100,000 product prices, 250,000 orders with ~1,000,000 order lines. The generator is
deterministic for a given ``seed`` and day. Data is consistent (suppliers are companies
flagged ``is_supplier``, ``line_total = unit_price * quantity``, header ``total`` = sum of
its lines, ISO 3166 alpha-2 countries, orders from 1 January two years ago until today)
and deliberately includes hard values: quotes, commas, tabs, newlines, backslashes, the
strings ``NULL`` and ``\\N``, non-ASCII names, NULLs in optional columns, empty strings and
soft-deleted rows. All datetimes are UTC.

Two variants share the generator (:class:`Variant`): ``sample`` (the schema above, unchanged)
and ``strings``, the same six tables, column names and keys with the other types the
contract allows (docs/data-model.md "Types are the source's own"): string company ids, BIGINT order
numbers, CHAR keys, NULL names/countries/usernames/cities, extra unlisted columns, another
physical column order, utf8mb4_bin/latin1/ascii text, the widest decimals and DATETIME(6).
"""

from __future__ import annotations

import logging
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Context, Decimal

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
# The columns of each table in the order the generator's row tuples hold them (= the metadata's order)
COLUMNS = {
    table: tuple(line.split()[0] for line in ddl.splitlines()[1:] if line.split()[0] not in ("PRIMARY", "UNIQUE", "KEY"))
    for table, ddl in TABLE_DDL.items()
}
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

# The strings variant: the same tables, column names and keys, every other freedom the contract
# leaves taken. Physical order differs (updated_datetime, is_deleted first); the columns marked
# "extra" are not in the metadata (never extracted, so any type is fine there).
STRINGS_DDL = {
    "companies": """CREATE TABLE companies (
        updated_datetime DATETIME(6) NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        legacy_flag BIT(1) NULL,
        company_name VARCHAR(200) NULL,
        internal_note TEXT NULL,
        company_id VARCHAR(20) NOT NULL,
        country CHAR(2) NULL,
        location POINT NULL,
        is_supplier TINYINT(1) NOT NULL DEFAULT 0,
        created_datetime DATETIME(6) NOT NULL,
        PRIMARY KEY (company_id),
        KEY ix_companies_updated (updated_datetime))""",
    "customers": """CREATE TABLE customers (
        updated_datetime DATETIME(6) NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        profile JSON NULL,
        customer_full_name VARCHAR(200) NULL,
        customer_document_no CHAR(12) NOT NULL,
        username VARCHAR(80) COLLATE utf8mb4_bin NULL,
        date_of_birth DATE NULL,
        loyalty_points INT UNSIGNED NULL,
        address_line_1 VARCHAR(200) NULL,
        address_line_2 VARCHAR(200) NULL,
        address_line_3 VARCHAR(200) NULL,
        city VARCHAR(100) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL,
        state VARCHAR(100) NULL,
        country CHAR(2) CHARACTER SET ascii COLLATE ascii_general_ci NULL,
        post_code VARCHAR(20) NULL,
        created_datetime DATETIME(6) NOT NULL,
        PRIMARY KEY (customer_document_no),
        UNIQUE KEY uq_customers_username (username),
        KEY ix_customers_updated (updated_datetime))""",
    "products": """CREATE TABLE products (
        updated_datetime DATETIME(6) NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        spec_sheet BLOB NULL,
        product_name VARCHAR(200) NULL,
        default_price DECIMAL(30,10) NOT NULL,
        supplier_id VARCHAR(20) NOT NULL,
        product_code CHAR(10) COLLATE utf8mb4_bin NOT NULL,
        created_datetime DATETIME(6) NOT NULL,
        PRIMARY KEY (product_code, supplier_id),
        KEY ix_products_updated (updated_datetime))""",
    "product_prices": """CREATE TABLE product_prices (
        updated_datetime DATETIME(6) NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        price DECIMAL(30,10) NOT NULL,
        price_list ENUM('standard', 'promo', 'contract') NULL,
        selling_company_id VARCHAR(20) NOT NULL,
        product_code CHAR(10) COLLATE utf8mb4_bin NOT NULL,
        created_datetime DATETIME(6) NOT NULL,
        PRIMARY KEY (product_code, selling_company_id),
        KEY ix_product_prices_updated (updated_datetime))""",
    "order_headers": """CREATE TABLE order_headers (
        updated_datetime DATETIME(6) NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        total DECIMAL(65,30) NOT NULL,
        internal_note TEXT NULL,
        customer_document_no CHAR(12) NOT NULL,
        company_id VARCHAR(20) NOT NULL,
        order_date DATE NOT NULL,
        legacy_flag BIT(1) NULL,
        order_no BIGINT NOT NULL,
        created_datetime DATETIME(6) NOT NULL,
        PRIMARY KEY (order_no),
        KEY ix_order_headers_updated (updated_datetime))""",
    "order_lines": """CREATE TABLE order_lines (
        updated_datetime DATETIME(6) NOT NULL,
        is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        line_total DECIMAL(65,30) NOT NULL,
        quantity INT NOT NULL,
        unit_price DECIMAL(30,10) NOT NULL,
        discount_pct DECIMAL(5,2) NULL,
        supplier_id VARCHAR(20) NOT NULL,
        product_code CHAR(10) COLLATE utf8mb4_bin NOT NULL,
        order_date DATE NOT NULL,
        line_comment VARCHAR(100) NULL,
        order_line_no BIGINT NOT NULL,
        order_no BIGINT NOT NULL,
        created_datetime DATETIME(6) NOT NULL,
        PRIMARY KEY (order_no, order_line_no),
        KEY ix_order_lines_updated (updated_datetime))""",
}
# latin1 holds these (customers.city is latin1 in the strings variant); no İstanbul
LATIN1_CITIES = ("Springfield", "München", "São Paulo", "Kraków", "Zürich", "Malmö", "Reykjavík", "Île-de-France",
                 "Tokyo", "Cape Town", "Lagos", "Toronto", "Seoul", "Sydney", "Porto", "Ciudad de México")
STRINGS_ORDER_BASE = 10_000_000_000  # strings order numbers: BASE + n, beyond 2^33
HUGE_PRICE = Decimal("12345678901234567890.0123456789")  # 20 integer digits: the most DECIMAL(30,10) holds
WIDE = Context(prec=100)  # exact arithmetic on the strings variant's 65-digit decimals


def _crc(*parts) -> int:
    return zlib.crc32(":".join(str(p) for p in parts).encode())


def _strings_extras(table: str, row: tuple) -> tuple:
    """Values of the strings variant's extra columns for one generated row (deterministic by key)."""
    h = _crc(table, row[0], row[1])
    note = None if h % 3 else ("legacy import\tbatch " + str(h % 97) if h % 2 else "checked \"twice\", ok")
    if table == "companies":  # legacy_flag, internal_note (location stays NULL)
        return (h % 2, note)
    if table == "customers":  # profile, loyalty_points
        return (None if h % 4 == 0 else f'{{"tier": "{("gold", "silver", "bronze")[h % 3]}", "newsletter": {str(h % 2 == 0).lower()}}}',
                None if h % 5 == 0 else h % 100_000)
    if table == "products":  # spec_sheet
        return (None if h % 2 else bytes([h % 256, 0, 255]) + b"\x00spec",)
    if table == "product_prices":  # price_list
        return (("standard", "promo", "contract", None)[h % 4],)
    if table == "order_headers":  # internal_note, legacy_flag
        return (note, h % 2)
    return (None if h % 4 else Decimal(h % 5000) / 100, note)  # order_lines: discount_pct, line_comment


@dataclass(frozen=True)
class Variant:
    """What a source schema variant changes: DDL, id formats, NULLs, decimals, timestamp precision.

    The generator yields rows in :data:`COLUMNS` order for every variant; ``extra_columns``
    (not in the metadata) are filled by ``extras(table, row)`` and inserted by name.
    """

    name: str
    ddl: dict[str, str]
    company_id: Callable[[int], int | str]
    customer_no: Callable[[int], str]
    product_code: Callable[[int], str]  # k = 0, 1, ... codes
    order_no: Callable[[int], int | str]
    order_index_sql: str  # MySQL expression: the running number n of ``order_no``
    cities: tuple[str, ...] = CITIES
    null_pct: float = 0.0  # percent of NULL names, countries, usernames, cities (0: never)
    price_digits: int = 2  # fractional digits of prices
    line_total_quantum: Decimal = Decimal("0.0001")
    microseconds: bool = False
    lower_usernames: bool = True
    extra_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    extras: Callable[[str, tuple], tuple] | None = None

    @property
    def now_sql(self) -> str:
        """MySQL's current UTC time at the variant's timestamp precision."""
        return "UTC_TIMESTAMP(6)" if self.microseconds else "UTC_TIMESTAMP()"

    def insert_columns(self, table: str) -> tuple[str, ...]:
        return COLUMNS[table] + self.extra_columns.get(table, ())

    def full_row(self, table: str, row: tuple) -> tuple:
        return row + self.extras(table, row) if self.extras and table in self.extra_columns else row


SAMPLE = Variant(
    name="sample",
    ddl=TABLE_DDL,
    company_id=lambda i: i,
    customer_no=lambda i: f"CD{i:08d}",
    product_code=lambda k: f"P{k + 1:06d}",
    order_no=lambda n: f"SO{n:08d}",
    order_index_sql="CAST(SUBSTRING(order_no, 3) AS UNSIGNED)",
)
STRINGS = Variant(
    name="strings",
    ddl=STRINGS_DDL,
    company_id=lambda i: f"CO{i:05d}",
    customer_no=lambda i: f"C-{i}",  # shorter than CHAR(12): MySQL pads on disk, strips on read
    # codes differing only in case are distinct keys under utf8mb4_bin: P00001 and p00001
    product_code=lambda k: f"{'pP'[k % 2]}{k // 2 + 1:05d}",
    order_no=lambda n: STRINGS_ORDER_BASE + n,
    order_index_sql=f"order_no - {STRINGS_ORDER_BASE}",
    cities=LATIN1_CITIES,
    null_pct=4.0,
    price_digits=10,
    line_total_quantum=Decimal("1E-30"),
    microseconds=True,
    lower_usernames=False,
    extra_columns={
        "companies": ("legacy_flag", "internal_note"),
        "customers": ("profile", "loyalty_points"),
        "products": ("spec_sheet",),
        "product_prices": ("price_list",),
        "order_headers": ("internal_note", "legacy_flag"),
        "order_lines": ("discount_pct", "line_comment"),
    },
    extras=_strings_extras,
)
VARIANTS = {v.name: v for v in (SAMPLE, STRINGS)}


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
        """Sizes for ``scale`` (1 = the sizes in the module docstring), with small minimums so tiny scales stay consistent."""
        return cls(
            companies=max(10, round(2_000 * scale)),
            customers=max(20, round(50_000 * scale)),
            products=max(20, round(20_000 * scale)),
            product_prices=max(20, round(100_000 * scale)),
            orders=max(20, round(250_000 * scale)),
        )


def utc_now(microseconds: bool = False) -> datetime:
    """Current UTC time, naive; whole seconds (DATETIME precision) unless ``microseconds``."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now if microseconds else now.replace(microsecond=0)


def first_order_date(today: date) -> date:
    """1 January two years before ``today``."""
    return date(today.year - 2, 1, 1)


class Generator:
    """Deterministic row generator for one seed and variant; rows are tuples in :data:`COLUMNS` order.

    The sample variant draws exactly the random numbers it always did (same data for the same
    seed); the strings variant's extra draws (NULLs, price digits, microseconds) come on top.
    """

    def __init__(self, seed: int, now: datetime, variant: Variant = SAMPLE):
        self.rng = random.Random(seed)
        self.now = now
        self.variant = variant
        self.start = datetime.combine(first_order_date(now.date()), datetime.min.time())

    def _text(self, normal: str, every: int = 40) -> str:
        if self.rng.randrange(every) == 0:
            return self.rng.choice(HARD_STRINGS)
        return normal

    def _nullable(self, value, row_no: int):
        """``value``, or NULL for the variant's share of rows (and always in row 2 when the variant has NULLs)."""
        pct = self.variant.null_pct
        if pct and (row_no == 2 or self.rng.random() * 100 < pct):
            return None
        return value

    def _micro(self, moment: datetime) -> datetime:
        """``moment`` plus random microseconds (DATETIME(6) variants), never past ``now``."""
        if not self.variant.microseconds:
            return moment
        return min(moment + timedelta(microseconds=self.rng.randrange(1_000_000)), self.now)

    def _stamps(self, earliest: datetime) -> tuple[datetime, datetime]:
        span = max(1, int((self.now - earliest).total_seconds()) - 3600)
        created = earliest + timedelta(seconds=self.rng.randrange(span))
        updated = min(created + timedelta(seconds=self.rng.randrange(30 * 86400)), self.now - timedelta(hours=1))
        created, updated = self._micro(created), self._micro(updated)
        return created, max(created, updated)

    def _price(self, cents: int) -> Decimal:
        """A price from whole cents, with the variant's further fractional digits drawn."""
        price = Decimal(cents) / 100
        extra = self.variant.price_digits - 2
        if extra > 0:
            price += Decimal(self.rng.randrange(10 ** extra)) / 10 ** self.variant.price_digits
        return price

    def _deleted(self) -> int:
        return 1 if self.rng.random() < 0.02 else 0

    def companies(self, n: int) -> list[tuple]:
        """``n`` company rows, ids 1..n; about a third (and always companies 1-3) are suppliers."""
        rows = []
        for i in range(1, n + 1):
            name = f"{self.rng.choice(NAME_WORDS)} {self.rng.choice(NAME_WORDS)} {self.rng.choice(COMPANY_SUFFIXES)}"
            country = self.rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0]
            created, updated = self._stamps(self.start - timedelta(days=365))
            # about a third are suppliers, and companies 1-3 always are
            is_supplier = 1 if i <= 3 or self.rng.random() < 0.35 else 0
            name = self._nullable(self._text(name), i)
            rows.append((self.variant.company_id(i), name, self._nullable(country, i), is_supplier,
                         created, updated, self._deleted()))
        return rows

    def customers(self, n: int) -> list[tuple]:
        """``n`` customer rows (document numbers CD00000001..), unique usernames, optional columns NULL or empty."""
        rows = []
        v = self.variant
        for i in range(1, n + 1):
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            r = self.rng.random()
            address_2 = None if r < 0.4 else ("" if r < 0.5 else f"Suite {self.rng.randrange(1, 900)}")
            r = self.rng.random()
            address_3 = None if r < 0.8 else ("" if r < 0.85 else self._text("c/o Reception", 5))
            dob = None if self.rng.random() < 0.05 else date(1940, 1, 1) + timedelta(days=self.rng.randrange(25_000))
            created, updated = self._stamps(self.start - timedelta(days=365))
            username = f"{_ascii(first)}.{_ascii(last)}.{i}"
            rows.append((
                v.customer_no(i),
                self._nullable(self._text(f"{first} {last}"), i),
                self._nullable(username.lower() if v.lower_usernames else username, i),
                self._nullable(dob, i),
                f"{self.rng.randrange(1, 999)} {self.rng.choice(STREETS)}",
                address_2,
                address_3,
                self._nullable(self.rng.choice(v.cities), i),
                None if self.rng.random() < 0.3 else self.rng.choice(("CA", "NY", "Bayern", "Île-de-France", "")),
                self._nullable(self.rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0], i),
                None if self.rng.random() < 0.1 else f"{self.rng.randrange(10000, 99999)}",
                created,
                updated,
                self._deleted(),
            ))
        return rows

    def products(self, n: int, supplier_ids: list) -> list[tuple]:
        """``n`` distinct (product_code, supplier_id) rows; ~20% of codes are sold by two suppliers.

        With more than two price digits (strings) the first product costs :data:`HUGE_PRICE`.
        """
        rows = []
        codes = max(1, int(n * 0.8))  # ~20% of codes are offered by a second supplier
        n = min(n, codes * len(supplier_ids))  # never ask for more distinct pairs than exist
        seen = set()
        while len(rows) < n:
            code = self.variant.product_code(self.rng.randrange(codes))
            supplier = self.rng.choice(supplier_ids)
            if (code, supplier) in seen:
                continue
            seen.add((code, supplier))
            name = f"{self.rng.choice(PRODUCT_ADJECTIVES)} {self.rng.choice(PRODUCT_NOUNS)} {code[-3:]}"
            price = self._price(self.rng.randrange(99, 250_000))
            if self.variant.price_digits > 2 and not rows:
                price = HUGE_PRICE
            created, updated = self._stamps(self.start - timedelta(days=200))
            rows.append((code, supplier, self._nullable(self._text(name, 60), len(rows) + 1), price,
                         created, updated, self._deleted()))
        return rows

    def product_prices(self, n: int, products: list[tuple], company_ids: list) -> list[tuple]:
        """Up to ``n`` distinct (product_code, selling_company_id) prices within ±20% of the default price."""
        default = {}
        for code, _supplier, _name, price, *_ in products:
            default.setdefault(code, price)
        codes = sorted(default)
        n = min(n, len(codes) * len(company_ids))
        quantum = Decimal(1).scaleb(-self.variant.price_digits)
        rows, seen = [], set()
        while len(rows) < n:
            code, seller = self.rng.choice(codes), self.rng.choice(company_ids)
            if (code, seller) in seen:
                continue
            seen.add((code, seller))
            price = WIDE.divide(WIDE.multiply(default[code], Decimal(self.rng.randrange(80, 121))), 100)
            price = price.quantize(quantum, context=WIDE)
            created, updated = self._stamps(self.start - timedelta(days=200))
            rows.append((code, seller, max(price, quantum), created, updated, self._deleted()))
        return rows

    def orders(self, first_no: int, n: int, ctx: "OrderContext", order_dates: tuple[date, date] | None = None, fresh: bool = False):
        """Yield ``(header, lines)`` for ``n`` orders with running numbers from ``first_no``.

        ``order_dates`` bounds the order date (default: the whole history); ``fresh`` stamps
        created/updated with ``now`` (a day of new activity).
        """
        lo, hi = order_dates or (self.start.date(), self.now.date())
        days = (hi - lo).days + 1
        quantum = self.variant.line_total_quantum
        for k in range(n):
            order_no = self.variant.order_no(first_no + k)
            order_date = lo + timedelta(days=self.rng.randrange(days))
            seller = self.rng.choice(ctx.company_ids)
            customer = self.rng.choice(ctx.customer_nos)
            if fresh:
                created = updated = self.now
            else:
                created = datetime.combine(order_date, datetime.min.time()) + timedelta(seconds=self.rng.randrange(86400))
                created = min(created, self.now - timedelta(hours=1))
                updated = min(created + timedelta(seconds=self.rng.randrange(3 * 86400)), self.now - timedelta(hours=1))
                created, updated = self._micro(created), self._micro(updated)
                updated = max(created, updated)
            deleted = self._deleted()
            lines, total = [], Decimal(0)
            for line_no in range(1, self.rng.choice((1, 2, 3, 3, 4, 4, 5, 5, 6, 7)) + 1):
                code, supplier, default_price = self.rng.choice(ctx.products)
                unit_price = ctx.prices.get((code, seller), default_price)
                quantity = self.rng.randrange(1, 21)
                line_total = WIDE.multiply(unit_price, quantity).quantize(quantum, context=WIDE)
                total = WIDE.add(total, line_total)
                line_deleted = 1 if deleted or self.rng.random() < 0.005 else 0
                lines.append((order_no, line_no, order_date, code, supplier, unit_price, quantity, line_total,
                              created, updated, line_deleted))
            yield (order_no, order_date, seller, customer, total, created, updated, deleted), lines


@dataclass
class OrderContext:
    """What order generation draws from: sellers, customers, products and seller prices."""

    company_ids: list
    customer_nos: list[str]
    products: list[tuple]  # (product_code, supplier_id, default_price)
    prices: dict  # (product_code, selling_company_id) -> price


def _ascii(name: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded if ch.isalnum()) or "user"
