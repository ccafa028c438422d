"""README's table from the seed's legacy MongoDB driver calls to libmongoc stays complete and true to the port."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PORT = ROOT / "roles" / "mongodb" / "checks" / "files" / "mongodb_test.c"

# Every legacy-driver name the notebook's mongodb_test.c uses (its MONGO_CONN_BAD_ARG line is commented out).
NOTEBOOK_LEGACY = [
    '"mongo.h"',
    "mongo conn[1]",
    "mongo_connect",
    "mongo_client()",
    "MONGO_OK",
    "conn->err",
    "MONGO_CONN_SUCCESS",
    "MONGO_CONN_NO_SOCKET",
    "MONGO_CONN_FAIL",
    "MONGO_CONN_NOT_MASTER",
    "MONGO_CONN_BAD_ARG",
    "mongo_destroy",
]


def table() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    start = text.index("| legacy driver (notebook) | libmongoc 1.23 (the lab's port) |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows.append((cells[0], cells[1]))
    return rows


def test_every_legacy_call_of_the_notebook_has_a_row() -> None:
    legacy = " ".join(left for left, _right in table())
    missing = [name for name in NOTEBOOK_LEGACY if name not in legacy]
    assert not missing, f"README's legacy-driver table lacks {missing}"


def test_every_libmongoc_function_named_is_used_by_the_port() -> None:
    port = PORT.read_text()
    named = {f for _left, right in table() for f in re.findall(r"\b(mongoc_[a-z_]+)\(", right)}
    assert len(named) >= 8
    unused = sorted(f for f in named if f + "(" not in port)
    assert not unused, f"README names libmongoc calls the port does not make: {unused}"
