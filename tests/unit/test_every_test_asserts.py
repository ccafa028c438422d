"""Every unit test asserts something: a test that cannot fail guards nothing.

A test asserts when its body (nested functions included) has an ``assert``, a ``pytest.raises`` /
``pytest.warns`` / ``pytest.fail``, or calls a helper that does: a function of its own module, or one
imported from tests/unit (conftest and the like), found by name and followed through helpers of helpers.
What a unit test imports from elsewhere (tests/integration's conftest) is code under test, not a helper."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent
TESTS = UNIT.parent
ASSERTING_PYTEST = {"raises", "warns", "fail", "deprecated_call"}


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function and method of a module, by name (methods too: helpers are often fixture methods)."""
    return {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _called(node: ast.AST) -> set[str]:
    names = set()
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        if isinstance(call.func, ast.Name):
            names.add(call.func.id)
        elif isinstance(call.func, ast.Attribute):
            names.add(call.func.attr)
    return names


def _asserts_itself(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assert):
            return True
        if (
            isinstance(sub, ast.Attribute)
            and sub.attr in ASSERTING_PYTEST
            and isinstance(sub.value, ast.Name)
            and sub.value.id == "pytest"
        ):
            return True
    return False


def _imported_helpers(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """The functions this module imports from modules of tests/unit."""
    out: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests.unit."):
            path = TESTS.parent / (node.module.replace(".", "/") + ".py")
            if path.is_file():
                theirs = _functions(ast.parse(path.read_text()))
                out.update({a.asname or a.name: theirs[a.name] for a in node.names if a.name in theirs})
    return out


def silent_tests(path: Path) -> list[str]:
    """The test_* functions of a module that assert nothing, directly or through a helper."""
    tree = ast.parse(path.read_text(), str(path))
    helpers = {**_imported_helpers(tree), **_functions(tree)}
    asserting = {name for name, fn in helpers.items() if _asserts_itself(fn)}
    grew = True
    while grew:  # helpers that call asserting helpers assert
        more = {name for name, fn in helpers.items() if name not in asserting and _called(fn) & asserting}
        asserting |= more
        grew = bool(more)
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        and not _asserts_itself(node)
        and not (_called(node) & asserting)
    ]


def test_every_unit_test_asserts() -> None:
    silent = {p.name: names for p in sorted(UNIT.glob("test_*.py")) if (names := silent_tests(p))}
    assert silent == {}, f"tests that assert nothing (give each an assert or a pytest.raises): {silent}"


SAMPLE = """
import pytest


def check(x):
    assert x


def check_twice(x):
    check(x)
    check(x)


def test_asserts():
    assert 1


def test_raises():
    with pytest.raises(ValueError):
        int("x")


def test_through_helpers():
    check_twice(1)


def test_calls_only():
    int("1")


def test_nested_only_defines():
    def inner():
        return 1
    inner()
"""


def test_the_scan_names_tests_without_an_assertion(tmp_path: Path) -> None:
    module = tmp_path / "test_sample.py"
    module.write_text(SAMPLE)
    assert silent_tests(module) == ["test_calls_only", "test_nested_only_defines"]


@pytest.mark.parametrize("name", ["test_memcached_smoke.py", "test_hostnet.py", "test_ci_requires_tools.py"])
def test_the_scan_reads_real_test_modules(name: str) -> None:
    """The modules whose silent tests the issue named are scanned (and have none now)."""
    assert (UNIT / name).is_file() and silent_tests(UNIT / name) == []
