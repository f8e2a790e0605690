"""The suite's own layout: helpers come from tests.support, never out of a conftest.py or another test module.

A test module importing ``conftest``, ``test_x`` or ``chaos`` works only while tests/ (or
its folder) happens to be on sys.path, and ties one test's file to another's.
"""

from __future__ import annotations

import ast

from tests.support.paths import REPO

TESTS = REPO / "tests"
SOURCES = sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path) -> list[str]:
    """Every module ``path`` imports, at any depth (function-local imports too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def wrong_imports(path) -> list[str]:
    """The imports of ``path`` that reach conftest, chaos or a test module instead of tests.support."""
    return [name for name in imported_modules(path)
            if name.split(".")[0] in ("conftest", "chaos") or name.split(".")[0].startswith("test_")
            or name.startswith(".") or (name.startswith("tests.") and name.split(".")[1] in ("unit", "integration"))]


def test_helpers_are_imported_from_tests_support_only():
    assert len(SOURCES) > 40  # the whole suite is scanned
    wrong = {str(p.relative_to(REPO)): wrong_imports(p) for p in SOURCES if wrong_imports(p)}
    assert wrong == {}, "move what these files import to tests/support"


def test_no_test_file_edits_sys_path():
    edits = [str(p.relative_to(REPO)) for p in SOURCES if "sys.path" in p.read_text() and p.name != "test_layout.py"]
    assert edits == []
