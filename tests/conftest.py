"""Marks from the path: every test under tests/unit is marked ``unit``, every test under
tests/integration ``integration`` (both registered in pyproject.toml), so ``-m unit`` or
``-m "not integration"`` select by folder; a test anywhere else is a usage error.

The folders' own conftest.py files hold their fixtures (the database ones:
tests/integration/conftest.py; the refusal to connect: tests/unit/conftest.py); helpers
live in tests/support.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MARKS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration}


def pytest_collection_modifyitems(config, items):
    stray = set()
    for item in items:
        path = Path(item.path).resolve()
        if not path.is_relative_to(HERE):
            continue  # not one of this suite's tests
        folder = path.relative_to(HERE).parts[0]
        if folder in MARKS:
            item.add_marker(MARKS[folder])
        else:
            stray.add(str(path.relative_to(HERE.parent)))
    if stray:
        raise pytest.UsageError(f"tests outside tests/unit and tests/integration: {', '.join(sorted(stray))}; "
                                "move each to the folder that says what it needs")
