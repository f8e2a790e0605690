"""Unit tests of the sample source generator (no database): the variants' schemas and data."""

from __future__ import annotations

import hashlib
import re
from functools import reduce
from datetime import datetime
from decimal import Decimal

import pytest
import yaml

from populate.orders import COLUMNS, SAMPLE, STRINGS, STRINGS_ORDER_BASE, TABLES, VARIANTS, WIDE, Generator, OrderContext, Sizes
from tests.support.paths import REPO

NOW = datetime(2026, 3, 5, 12, 34, 56)
# sha256 of the sample variant's rows for seeds 42 (scale 0.01) and 7 (scale 0.002) at NOW, plus a day of
# fresh orders: the sample data must stay the same for the same seed (BENCHMARKS.md compares runs on it)
SAMPLE_DIGEST = "0af959194301158363d6567f339a140282cf16f4cacaf8498f9dfc7f556fcfcd"


def generate(variant, seed: int, scale: float, fresh_from: int | None = None) -> dict[str, list]:
    """Every table's rows as create_and_fill makes them, plus ``fresh``: 20 orders of a changes day
    numbered from ``fresh_from`` (default: after the others)."""
    sizes = Sizes.for_scale(scale)
    gen = Generator(seed, NOW, variant)
    companies = gen.companies(sizes.companies)
    customers = gen.customers(sizes.customers)
    products = gen.products(sizes.products, [c[0] for c in companies if c[3]])
    prices = gen.product_prices(sizes.product_prices, products, [c[0] for c in companies])
    ctx = OrderContext(company_ids=[c[0] for c in companies], customer_nos=[c[0] for c in customers],
                       products=[(p[0], p[1], p[3]) for p in products], prices={(p[0], p[1]): p[2] for p in prices})
    orders = list(gen.orders(1, sizes.orders, ctx))
    fresh = list(gen.orders(fresh_from or sizes.orders + 1, 20, ctx, order_dates=(NOW.date(), NOW.date()), fresh=True))
    return {"companies": companies, "customers": customers, "products": products, "product_prices": prices,
            "orders": orders, "fresh": fresh}


def test_sample_data_is_unchanged_for_the_same_seed():
    digest = hashlib.sha256()
    for seed, scale in ((42, 0.01), (7, 0.002)):
        for rows in generate(SAMPLE, seed, scale, fresh_from=501).values():
            digest.update(repr(rows).encode())
    assert digest.hexdigest() == SAMPLE_DIGEST


def _ddl_columns(ddl: str) -> list[str]:
    return [line.split()[0] for line in ddl.splitlines()[1:] if line.split()[0] not in ("PRIMARY", "UNIQUE", "KEY")]


def _ddl_keys(ddl: str) -> list[str]:
    return [line.strip().rstrip(",)") for line in ddl.splitlines() if line.split()[0] in ("PRIMARY", "UNIQUE")]


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS)
def test_variant_tables_fit_the_metadata(variant):
    """Both variants: the metadata's columns (in COLUMNS order), the sample's keys, plus only the extra columns."""
    meta = yaml.safe_load((REPO / "extract_config" / "mysql_tables.yaml").read_text())
    assert set(meta) == set(TABLES) == set(variant.ddl)
    for table in TABLES:
        assert list(COLUMNS[table]) == meta[table]["columns"]
        columns = _ddl_columns(variant.ddl[table])
        assert set(COLUMNS[table]) <= set(columns) and set(variant.insert_columns(table)) <= set(columns), table
        assert len(columns) == len(set(columns)), table
        assert _ddl_keys(variant.ddl[table]) == _ddl_keys(SAMPLE.ddl[table]), table
    if variant is SAMPLE:
        assert all(_ddl_columns(SAMPLE.ddl[t]) == list(COLUMNS[t]) for t in TABLES)
    else:
        assert all(len(_ddl_columns(STRINGS.ddl[t])) > len(COLUMNS[t]) for t in TABLES)  # unlisted columns
        assert all(_ddl_columns(STRINGS.ddl[t])[:2] == ["updated_datetime", "is_deleted"] for t in TABLES)


def test_strings_variant_data():
    data = generate(STRINGS, 7, 0.002)
    companies, customers = data["companies"], data["customers"]
    assert all(re.fullmatch(r"CO\d{5}", c[0]) for c in companies)
    suppliers = {c[0] for c in companies if c[3]}
    assert {p[1] for p in data["products"]} <= suppliers
    for column in (1, 2):  # company_name, country
        assert any(c[column] is None for c in companies)
    for column in (1, 2, 3, 7, 9):  # customer_full_name, username, date_of_birth, city, country
        nulls = sum(c[column] is None for c in customers)
        assert 0 < nulls < len(customers) / 4, column
    assert any(p[2] is None for p in data["products"])
    assert all(c[7] is None or c[7].encode("latin1") for c in customers)  # latin1 column
    assert all(len(c[0]) <= 12 for c in customers) and all(len(p[0]) <= 10 for p in data["products"])
    assert len({c[2] for c in customers if c[2]}) == sum(1 for c in customers if c[2])  # unique usernames
    assert max(p[3] for p in data["products"]) == Decimal("12345678901234567890.0123456789")
    for header, lines in data["orders"] + data["fresh"]:
        assert isinstance(header[0], int) and header[0] > 2**33 and header[0] - STRINGS_ORDER_BASE > 0
        assert header[2] in {c[0] for c in companies}
        assert header[4] == reduce(WIDE.add, (line[7] for line in lines))  # exactly, at 65 digits
        for line in lines:
            assert line[7] == WIDE.multiply(line[5], line[6]) and line[4] in suppliers
            assert line[7].as_tuple().exponent == -30 and line[5].as_tuple().exponent >= -10
    stamps = [c[5] for c in companies] + [h[6] for h, _ in data["orders"]]
    assert sum(s.microsecond != 0 for s in stamps) > len(stamps) * 0.9
    assert all(h[5] <= h[6] <= NOW for h, _ in data["orders"])
    extras = [STRINGS.full_row(t, r)[len(COLUMNS[t]):] for t in ("companies", "customers") for r in data[t]]
    assert all(extras) and any(v is not None for e in extras for v in e)
