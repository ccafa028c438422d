"""Under CI (CI=true) a missing podman or qemu fails the integration tests instead of skipping them."""

from __future__ import annotations

import shutil

import pytest

from tests.integration.conftest import require_tool


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true: no-such-qemu-x is not installed .*apt-get install qemu"):
        require_tool("no-such-qemu-x", "qemu-system-x86 qemu-utils")


def test_a_missing_tool_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-qemu-x is not installed"):
        require_tool("no-such-qemu-x", "qemu-system-x86 qemu-utils")


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_present_tool_neither_fails_nor_skips(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    assert shutil.which("sh") is not None
    assert require_tool("sh", "dash") is None  # pytest.fail and pytest.skip raise: reaching here is the pass
