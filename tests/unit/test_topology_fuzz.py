"""Fuzzing the topology loader: any value in any field, any text, any bytes is a valid topology or one
LabError (one line, names the file, says the fix), never another exception. Deterministic (derandomize)."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from labctl import paths
from labctl.errors import LabError
from labctl.topology import load, parse

from .test_bad_input import BASE, STATIC

KNOWN = frozenset(paths.known_groups())
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
FIELDS: list[tuple[Any, ...]] = [
    ("schema",),
    ("name",),
    ("provider",),
    ("image",),
    ("networks",),
    ("networks", 0),
    ("networks", 0, "name"),
    ("networks", 0, "subnet"),
    ("networks", 0, "routes"),
    ("networks", 1, "routes", 0),
    ("networks", 1, "routes", 0, "to"),
    ("networks", 1, "routes", 0, "via"),
    ("groups",),
    ("groups", "web"),
    ("groups", "web", "web_port"),
    ("vars",),
    ("hosts",),
    ("hosts", 0),
    ("hosts", 0, "name"),
    ("hosts", 0, "groups"),
    ("hosts", 0, "networks"),
    ("hosts", 0, "networks", 0),
    ("hosts", 1, "groups", 0),
    ("hosts", 1, "addresses"),
    ("hosts", 1, "addresses", "dmz"),
    ("hosts", 1, "vars"),
    ("hosts", 0, "address"),
    ("hosts", 0, "user"),
    ("hosts", 0, "key"),
    ("hosts", 0, "provider"),
    ("hosts", 1, "provider"),
]


def _assert_clear(exc: LabError) -> None:
    message = str(exc)
    assert message.startswith("lab.yml") and "Fix:" in message and "\n" not in message, message


@settings(max_examples=600, derandomize=True, deadline=None)
@given(st.sampled_from(FIELDS), VALUES, st.booleans(), st.booleans())
def test_any_value_in_any_field(field: tuple[Any, ...], value: Any, static: bool, as_key: bool) -> None:
    data = copy.deepcopy(STATIC if static and field[0] == "hosts" and field[-1] != 1 else BASE)
    target = data
    try:
        for step in field[:-1]:
            target = target[step]
        if as_key and isinstance(target, dict) and isinstance(value, str):
            target[value] = target.pop(field[-1], None)  # a strange key instead of a strange value
        else:
            target[field[-1]] = value
    except (KeyError, IndexError, TypeError):
        return  # the field is not in this base (e.g. a static topology has no networks)
    try:
        parse(data, Path("lab.yml"), KNOWN)
    except LabError as exc:
        _assert_clear(exc)


def _load(content: str | bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="labctl-fuzz-") as tmp:
        path = Path(tmp) / "lab.yml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        try:
            load(path, KNOWN)
        except LabError as exc:
            message = str(exc)
            assert message.startswith(str(path)) and "Fix:" in message and "\n" not in message, message


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text(max_size=200))
def test_any_text(text: str) -> None:
    _load(text)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes(data: bytes) -> None:
    _load(data)


YAML_BITS = st.sampled_from(
    ["name: sn-f\n", "schema: 1\n", "hosts:\n", "  - name: h1\n", "    networks: [lan]\n", "networks:\n",
     "  - {name: lan, subnet: 198.18.78.0/24}\n", "- ", ": ", "&a ", "*a ", "<<: *a\n", "{", "}", "[", "]", "!!str ",
     "? ", "\t", "'", '"', "#", "---\n", "...\n", "%YAML 1.1\n", "\n", "  ", "name: all\n", "vars: {a: 1}\n"]
)  # fmt: skip


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.lists(YAML_BITS, max_size=25))
def test_any_mix_of_yaml_pieces(bits: list[str]) -> None:
    _load("".join(bits))
