"""The base image's tag follows its recipe."""

from __future__ import annotations

import pytest

from labctl.providers import image


def test_tag_carries_the_recipe_hash() -> None:
    tag = image.image_tag()
    assert tag.startswith("localhost/labctl/debian:bookworm-")
    assert tag.endswith(image.recipe_hash()) and len(image.recipe_hash()) == 12


def test_a_changed_recipe_changes_the_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    before = image.image_tag()
    monkeypatch.setattr(image, "PACKAGES", (*image.PACKAGES, "vim-tiny"))
    assert image.image_tag() != before
    monkeypatch.undo()
    monkeypatch.setitem(image.FILES, "etc/motd", "hello\n")
    assert image.image_tag() != before


def test_the_image_has_what_every_host_installs() -> None:
    """common_packages of the common role are in the recipe (and so in its hash)."""
    common = image.common_packages()
    assert "curl" in common and "netcat-openbsd" in common
    assert set(common) <= set(image.PACKAGES)
    assert len(image.PACKAGES) == len(set(image.PACKAGES))
