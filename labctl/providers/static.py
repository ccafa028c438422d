"""Static provider: hosts that already exist (an address, a user and a key in the topology file).

labctl never creates or removes them; it only reaches them over SSH. The base class's defaults are
such hosts' (nothing to make, no console, nothing to save): this provider overrides only what differs."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from labctl.providers.base import Fail, HostInfo, HostSpec, HostState, Provider, register

FIELDS = ("address", "user", "key")  # how labctl reaches an existing host (refused in this order elsewhere)
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


@register("static")
class StaticProvider(Provider):
    name = "static"
    host_settings: ClassVar[frozenset[str]] = frozenset(FIELDS)
    needs_networks = False  # an existing host may be on no lab network

    @classmethod
    def parse_host_options(cls, item: dict[str, Any], where: str, fail: Fail) -> dict[str, Any]:
        """address, user and key: how labctl reaches an existing host."""
        address = item.get("address")
        if not isinstance(address, str) or not address.strip() or address.startswith("-") or " " in address:
            raise fail(
                f"{where}.address",
                f"a static host needs an address, got {address!r}",
                "give the host's reachable address or DNS name",
            )
        user = item.get("user", "root")
        if not isinstance(user, str) or not _USER.fullmatch(user):
            raise fail(f"{where}.user", f"{user!r} is not a user name", "give the login user, e.g. root")
        key = item.get("key")
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise fail(f"{where}.key", f"{key!r} is not a path", "give the SSH private key's path, or leave it out")
        return {"address": address, "user": user, "key": key}

    @classmethod
    def refuse_host_options(cls, item: dict[str, Any], provider: str, where: str, fail: Fail) -> None:
        for key in FIELDS:
            if key in item:
                raise fail(
                    f"{where}.{key}",
                    f"'{key}' is only for existing hosts (provider: static)",
                    "remove it: labctl gives the hosts it creates their addresses, user root and the lab's key",
                )

    def list(self, lab: str, hosts: list[HostSpec] | None = None) -> dict[str, HostInfo]:
        """Static hosts are always there: labctl does not manage their life."""
        return {h.name: HostInfo(h.name, HostState.STATIC) for h in hosts or []}
