"""Pure logic of the swig smoke checks: C ctime() text parsing and comparison."""

from __future__ import annotations

import time

import pytest

from labctl.smoke import swig


def test_parse_ctime_with_newline_and_padded_day() -> None:
    got = swig.parse_ctime("Wed Nov  5 14:13:09 2026\n")
    assert (got.year, got.month, got.day, got.hour, got.minute, got.second) == (2026, 11, 5, 14, 13, 9)


def test_parse_ctime_matches_python_ctime() -> None:
    now = time.time()
    assert swig.parse_ctime(time.ctime(now)).timestamp() == pytest.approx(int(now), abs=1)


def test_ctime_skew_seconds() -> None:
    assert swig.ctime_skew("Wed Nov 25 13:59:59 2026\n", "Wed Nov 25 14:00:01 2026") == 2
    assert swig.ctime_skew("Wed Nov 25 13:16:27 2026\n", "Wed Nov 25 14:16:27 2026") == 3600


def test_ctime_skew_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        swig.ctime_skew("not a time", "Wed Nov 25 14:00:01 2026")


def test_probe_ships_as_package_data() -> None:
    assert "import example" in swig._PROBE
    compile(swig._PROBE, "swig_probe.py", "exec")
