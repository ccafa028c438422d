"""SWIG: the seed's `example` C module, built by the swig role, works from Python 3 on the host.

The role builds one module, ``example`` (example.c + example.i from the seed, plus the seed's
pointer-argument ``add(double a, double b, double *result)`` wrapped with typemaps.i's
``double *OUTPUT``), in ``swig_build_dir`` and puts a .pth file into the site dir.
The seed's second, C++ example (``header.h`` + ``example.cc`` behind the notebook's own
``example.i``, built with g++) is a separate module ``example`` in ``swig_cxx_build_dir``.
What it built where is read from its fact (``ctx.fact(host, "swig")``).
Every check imports it on the host the way a user would (``cd <build dir> && python3``, and
from ``/`` through the .pth file) via files/swig_probe.py, and compares real return values.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from datetime import datetime
from pathlib import Path
from typing import Any

from labctl.checks.base import CheckFailed, CheckSkipped, Context, check

SERVICE = "swig"
GROUP = "swig"

_PROBE = (Path(__file__).parent / "files" / "swig_probe.py").read_text()
_PROBE_PATH = "/tmp/labctl-swig-probe.py"


def _build_dir(ctx: Context, host: str) -> str:
    return str(ctx.fact(host, SERVICE)["build_dir"])


def _probe(ctx: Context, host: str, *exprs: str, cwd: str | None = None) -> dict[str, Any]:
    """Import example on host from cwd (default: the build dir) and evaluate exprs there."""
    cwd = cwd or _build_dir(ctx, host)
    argv = " ".join(shlex.quote(e) for e in exprs)
    # `python3 -c` (not `python3 FILE`) keeps sys.path[0] = the working directory, as an interactive
    # user has it. The probe goes up as a file, not on stdin (the runner feeds stdin 1 byte per 10 ms).
    ctx.put_text(host, _PROBE, _PROBE_PATH)
    command = f'cd {shlex.quote(cwd)} && python3 -c "$(cat {_PROBE_PATH})" {argv}'
    result = ctx.sh(host, command, timeout=60)
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise CheckFailed(f"{host}: probe printed no JSON ({exc})", command, result.output) from exc
    if "import_error" in data:
        raise CheckFailed(
            f"{host}: `import example` failed in {cwd}", command, data["import_error"] + f"\nsys.path={data['path']}"
        )
    data["command"] = command
    return data


def _shown(data: dict[str, Any]) -> str:
    """The probe's answers, one line each, for a failure report."""
    lines = [f"example from {data['file']}, _example from {data['ext']}"]
    for expr, entry in data["results"].items():
        lines.append(f"{expr} -> " + (entry["error"] if "error" in entry else f"{entry['repr']} ({entry['type']})"))
    return "\n".join(lines)


def _value(host: str, data: dict[str, Any], expr: str) -> Any:
    """The value an expression gave on the host; a Python exception there fails the check."""
    entry = data["results"][expr]
    if "error" in entry:
        raise CheckFailed(f"{host}: {expr} raised {entry['error']}", data["command"], _shown(data))
    if "value" not in entry:
        raise CheckFailed(
            f"{host}: {expr} returned {entry['repr']} ({entry['type']}), not a plain value",
            data["command"],
            _shown(data),
        )
    return entry["value"]


def _expect(host: str, data: dict[str, Any], expr: str, want: Any, kind: type | None = None) -> None:
    got = _value(host, data, expr)
    entry = data["results"][expr]
    if got != want or (kind is not None and entry["type"] != kind.__name__):
        raise CheckFailed(
            f"{host}: {expr} returned {entry['repr']} ({entry['type']}), expected {want!r}",
            data["command"],
            _shown(data),
        )


def parse_ctime(text: str) -> datetime:
    """Parse C ctime()/Python time.ctime() text ('Wed Nov  5 14:13:09 2026', maybe with a newline)."""
    return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")


def ctime_skew(c_text: str, py_text: str) -> float:
    """Seconds between two ctime strings (raises ValueError when one does not parse)."""
    return abs((parse_ctime(c_text) - parse_ctime(py_text)).total_seconds())


@check("example module builds and imports")
def imports(ctx: Context) -> None:
    for host in ctx.hosts(GROUP):
        build = _build_dir(ctx, host)
        places = [build]
        if ctx.fact(host, SERVICE)["install_pth"]:
            places.append("/")  # through swig-example.pth in the site dir
        for cwd in places:
            data = _probe(ctx, host, "example.__name__", cwd=cwd)
            for key, name in (("file", "example.py"), ("ext", "_example.so")):
                if posixpath.normpath(data[key]) != f"{build}/{name}":
                    raise CheckFailed(
                        f"{host}: from {cwd}, {name} was imported from {data[key]}, expected {build}/{name}",
                        data["command"],
                        _shown(data),
                    )


@check("fact and my_mod are the C functions")
def functions(ctx: Context) -> None:
    cases = {
        "example.fact(5)": 120,
        "example.fact(10)": 3628800,
        "example.fact(1)": 1,
        "example.my_mod(7, 3)": 1,
        # C's % truncates toward zero: -7 % 3 is -1 in C (Python would say 2).
        "example.my_mod(-7, 3)": -1,
    }
    for host in ctx.hosts(GROUP):
        data = _probe(ctx, host, *cases)
        for expr, want in cases.items():
            _expect(host, data, expr, want, int)


@check("My_variable through cvar")
def my_variable(ctx: Context) -> None:
    for host in ctx.hosts(GROUP):
        want = float(ctx.fact(host, SERVICE)["example_my_variable"])
        read = "example.cvar.My_variable"
        write = 'setattr(example.cvar, "My_variable", 42.5) or example.cvar.My_variable'
        data = _probe(ctx, host, read, write)
        _expect(host, data, read, want, float)
        # Writing through cvar changes the C global itself (the generated getter reads it back).
        _expect(host, data, write, 42.5, float)


@check("get_time is the host's ctime")
def get_time(ctx: Context) -> None:
    expr = "(example.get_time(), time.ctime())"
    for host in ctx.hosts(GROUP):
        data = _probe(ctx, host, expr)
        got = _value(host, data, expr)
        c_text, py_text = got
        if not isinstance(c_text, str) or not c_text.endswith("\n"):
            raise CheckFailed(
                f"{host}: example.get_time() returned {c_text!r}, expected C ctime() text ending in a newline",
                data["command"],
            )
        try:
            skew = ctime_skew(c_text, py_text)
        except ValueError as exc:
            raise CheckFailed(
                f"{host}: cannot parse example.get_time()={c_text!r} / time.ctime()={py_text!r}: {exc}",
                data["command"],
            ) from exc
        if skew > 2:
            raise CheckFailed(
                f"{host}: example.get_time()={c_text.strip()!r} is {skew:.0f} s off time.ctime()={py_text!r}",
                data["command"],
            )


@check("add() returns its double *OUTPUT")
def add(ctx: Context) -> None:
    cases = {"example.add(1.5, 2.25)": 3.75, "example.add(-1.0, 0.25)": -0.75}
    for host in ctx.hosts(GROUP):
        data = _probe(ctx, host, *cases)
        for expr, want in cases.items():
            _expect(host, data, expr, want, float)


# example.cc: foo() is 42, foo(n) is 42 + n (a C++ overload), Counter(start) counts up from start.
CXX_CASES = {
    "example.foo()": 42,
    "example.foo(8)": 50,
    "example.Counter(5).next()": 6,
    "example.Counter().value()": 0,
}


@check("C++ example (header.h + example.cc): example.foo()")
def cxx_example(ctx: Context) -> str:
    for host in ctx.hosts(GROUP):
        build = ctx.fact(host, SERVICE).get("cxx_build_dir")
        if not build:
            raise CheckSkipped(f"{host}: the C++ example is not built (swig_cxx_example: false)")
        data = _probe(ctx, host, *CXX_CASES, cwd=build)
        for key, name in (("file", "example.py"), ("ext", "_example.so")):
            if posixpath.normpath(data[key]) != f"{build}/{name}":
                raise CheckFailed(
                    f"{host}: from {build}, {name} was imported from {data[key]}, expected {build}/{name}",
                    data["command"],
                    _shown(data),
                )
        for expr, want in CXX_CASES.items():
            _expect(host, data, expr, want, int)
        # It is C++ code: the module needs the C++ runtime (ld -shared was given libstdc++).
        ldd = ctx.sh(host, f"ldd {shlex.quote(build)}/_example.so")
        if "libstdc++" not in ldd.stdout:
            raise CheckFailed(f"{host}: {build}/_example.so does not link libstdc++", "ldd", ldd.output)
    return "example.foo() = 42, foo(8) = 50, Counter(5).next() = 6"
