"""Slice logic of the sliceable switch: data model, validation, slice lookup and forwarding decisions.

Pure Python (no os_ken import) so it is unit-tested on the labctl machine and copied unchanged to the
controller host, where ``app.py`` drives it from OpenFlow events.

Semantics (after Trema's sliceable_switch, slice.c, as charted in the seed):

* A slice has port bindings ``(datapath_id, port, vid)``, MAC bindings ``mac`` and port-MAC bindings
  ``mac`` created under one of its port bindings. ``vid`` 0xffff (65535) means untagged.
* ``lookup(dpid, port, vid, mac)``: 1) a MAC binding admits the host into its slice (on any port
  when ``loose``; otherwise not on a port that is port-bound to another slice); 2) with
  ``restrict_hosts_on_port`` only a port-MAC binding admits a host (on exactly that port); 3) without
  it, a port binding admits every host on the port. No slice: the packet is dropped.
* One FDB per slice. Known destination: forward to the learned port. Broadcast/unknown unicast: flood
  only to the slice's ports (port bindings; under restrict only those with port-MAC bindings) and to
  the ports where the slice's MAC-bound hosts were last seen (dynamic bindings, expire when idle).
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

UNTAGGED = 0xFFFF
OFPP_MAX = 0xFFFFFF00
DYNAMIC_BINDING_TTL = 3600.0  # seconds a MAC-bound host's last location is kept without traffic

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")


class SliceError(Exception):
    """A request the slice table refuses; ``status`` is the HTTP status the REST API answers with."""

    status = 400


class ValidationError(SliceError):
    status = 400


class NotFound(SliceError):
    status = 404


class Conflict(SliceError):
    status = 422  # Trema answers a duplicate id with 422 Unprocessable Entity


# --- validation ----------------------------------------------------------------------------------


def parse_id(value: Any, what: str = "id") -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValidationError(f"{what} must be 1-64 characters of letters, digits, '_', '.', '-', got {value!r}")
    return value


def parse_mac(value: Any) -> str:
    """A unicast MAC address as 'aa:bb:cc:dd:ee:ff' (':' or '-' separated, or 12 hex digits)."""
    if not isinstance(value, str) or not _MAC_RE.match(value.strip().lower()):
        raise ValidationError(f"mac must be a MAC address like 02:00:00:00:00:01, got {value!r}")
    digits = re.sub(r"[:-]", "", value.strip().lower())
    mac = ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    if int(digits[:2], 16) & 1:
        raise ValidationError(f"mac {mac} is a multicast/broadcast address; only hosts (unicast) can be bound")
    return mac


def parse_dpid(value: Any) -> int:
    """A datapath id: an integer, or a string in decimal, '0x'-hex or 16 hex digits (ovs-ofctl's form)."""
    dpid: int | None = None
    if isinstance(value, bool):
        dpid = None
    elif isinstance(value, int):
        dpid = value
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            if text.startswith("0x") or (len(text) == 16 and re.fullmatch(r"[0-9a-f]{16}", text)):
                dpid = int(text, 16)
            elif text.isdigit():
                dpid = int(text)
        except ValueError:
            dpid = None
    if dpid is None or not 0 <= dpid < 2**64:
        raise ValidationError(f"datapath_id must be a 64-bit integer (or '0x...' string), got {value!r}")
    return dpid


def parse_port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= OFPP_MAX:
        raise ValidationError(f"port must be an OpenFlow port number 1..{OFPP_MAX}, got {value!r}")
    return value


def parse_vid(value: Any) -> int:
    if value is None:
        return UNTAGGED
    if isinstance(value, bool) or not isinstance(value, int) or not (1 <= value <= 4094 or value == UNTAGGED):
        raise ValidationError(f"vid must be a VLAN id 1..4094 or 65535 (untagged), got {value!r}")
    return value


def parse_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{what} must be true or false, got {value!r}")
    return value


def _obj(data: Any, allowed: Iterable[str], what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(f"{what} must be a JSON object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationError(f"{what}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return data


def dpid_str(dpid: int) -> str:
    return f"0x{dpid:x}"


# --- model ---------------------------------------------------------------------------------------


@dataclass
class PortBinding:
    id: str
    dpid: int
    port: int
    vid: int = UNTAGGED
    attachments: dict[str, str] = field(default_factory=dict)  # port-MAC bindings: id -> mac

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.dpid, self.port, self.vid)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "datapath_id": dpid_str(self.dpid),
            "port": self.port,
            "vid": self.vid,
            "attachments": [{"id": b, "mac": m} for b, m in self.attachments.items()],
        }


@dataclass
class Slice:
    id: str
    description: str = ""
    ports: dict[str, PortBinding] = field(default_factory=dict)
    attachments: dict[str, str] = field(default_factory=dict)  # MAC bindings: id -> mac

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "ports": [p.to_dict() for p in self.ports.values()],
            "attachments": [{"id": b, "mac": m} for b, m in self.attachments.items()],
        }


@dataclass
class Config:
    restrict_hosts_on_port: bool = False
    loose: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"restrict_hosts_on_port": self.restrict_hosts_on_port, "loose": self.loose}


@dataclass
class Location:
    """Where a MAC-bound host was last seen (Trema's dynamic port binding)."""

    slice_id: str
    dpid: int
    port: int
    vid: int
    seen: float


def _new_id(prefix: str, taken: Iterable[str]) -> str:
    used = set(taken)
    n = 1
    while f"{prefix}{n}" in used:
        n += 1
    return f"{prefix}{n}"


class SliceTable:
    """All slices, their bindings and the options; every change calls the listeners."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.slices: dict[str, Slice] = {}
        self.config = Config()
        self.locations: dict[str, Location] = {}  # mac -> last location of a MAC-bound host
        self.generation = 0
        self.locations_dirty = False  # set when a MAC-bound host shows up somewhere new
        self.listeners: list[Callable[[SliceTable], None]] = []
        self.clock = clock

    # -- change notification
    def _changed(self) -> None:
        self.generation += 1
        # forget locations of hosts that are no longer MAC-bound to the same slice
        for mac, loc in list(self.locations.items()):
            if self.mac_slice(mac) != loc.slice_id:
                del self.locations[mac]
        for listener in list(self.listeners):
            listener(self)

    # -- queries
    def get(self, slice_id: str) -> Slice:
        try:
            return self.slices[slice_id]
        except KeyError:
            raise NotFound(f"no slice {slice_id!r}") from None

    def get_port(self, slice_id: str, binding_id: str) -> PortBinding:
        sl = self.get(slice_id)
        try:
            return sl.ports[binding_id]
        except KeyError:
            raise NotFound(f"slice {slice_id!r} has no port binding {binding_id!r}") from None

    def mac_slice(self, mac: str) -> str | None:
        for sl in self.slices.values():
            if mac in sl.attachments.values():
                return sl.id
        return None

    def port_owner(self, dpid: int, port: int, vid: int) -> tuple[str, PortBinding] | None:
        for sl in self.slices.values():
            for pb in sl.ports.values():
                if pb.key == (dpid, port, vid):
                    return sl.id, pb
        return None

    # -- slices
    def create_slice(self, data: Any) -> Slice:
        data = _obj(data, ("id", "description"), "slice")
        sid = parse_id(data["id"], "slice id") if "id" in data else _new_id("slice", self.slices)
        desc = data.get("description", "")
        if not isinstance(desc, str) or len(desc) > 256:
            raise ValidationError("description must be a string of at most 256 characters")
        if sid in self.slices:
            raise Conflict(f"slice {sid!r} already exists")
        sl = Slice(sid, desc)
        self.slices[sid] = sl
        self._changed()
        return sl

    def update_slice(self, slice_id: str, data: Any) -> Slice:
        sl = self.get(slice_id)
        data = _obj(data, ("id", "description"), "slice")
        if "id" in data and data["id"] != slice_id:
            raise ValidationError("a slice's id cannot change")
        desc = data.get("description", sl.description)
        if not isinstance(desc, str) or len(desc) > 256:
            raise ValidationError("description must be a string of at most 256 characters")
        sl.description = desc
        return sl

    def delete_slice(self, slice_id: str) -> None:
        self.get(slice_id)
        del self.slices[slice_id]
        self._changed()

    # -- port bindings
    def add_port(self, slice_id: str, data: Any) -> PortBinding:
        sl = self.get(slice_id)
        data = _obj(data, ("id", "datapath_id", "port", "vid", "attachments"), "port binding")
        for req in ("datapath_id", "port"):
            if req not in data:
                raise ValidationError(f"port binding: {req} is required")
        pb = PortBinding(
            parse_id(data["id"], "binding id") if "id" in data else _new_id("port", sl.ports),
            parse_dpid(data["datapath_id"]),
            parse_port(data["port"]),
            parse_vid(data.get("vid")),
        )
        if pb.id in sl.ports:
            raise Conflict(f"slice {slice_id!r} already has a port binding {pb.id!r}")
        owner = self.port_owner(*pb.key)
        if owner is not None:
            raise Conflict(
                f"port {dpid_str(pb.dpid)}:{pb.port} vid {pb.vid} is already bound to slice {owner[0]!r} "
                f"({owner[1].id})"
            )
        attachments = data.get("attachments", [])
        if not isinstance(attachments, list):
            raise ValidationError("port binding: attachments must be a list of {id, mac}")
        for att in attachments:
            self._new_port_mac(pb, att)
        sl.ports[pb.id] = pb
        self._changed()
        return pb

    def remove_port(self, slice_id: str, binding_id: str) -> None:
        self.get_port(slice_id, binding_id)
        del self.slices[slice_id].ports[binding_id]
        self._changed()

    # -- MAC bindings
    def add_mac(self, slice_id: str, data: Any) -> tuple[str, str]:
        sl = self.get(slice_id)
        data = _obj(data, ("id", "mac"), "MAC binding")
        if "mac" not in data:
            raise ValidationError("MAC binding: mac is required")
        mac = parse_mac(data["mac"])
        bid = parse_id(data["id"], "binding id") if "id" in data else _new_id("mac", sl.attachments)
        if bid in sl.attachments:
            raise Conflict(f"slice {slice_id!r} already has a MAC binding {bid!r}")
        owner = self.mac_slice(mac)
        if owner is not None:
            raise Conflict(f"mac {mac} is already bound to slice {owner!r}")
        sl.attachments[bid] = mac
        self._changed()
        return bid, mac

    def get_mac(self, slice_id: str, binding_id: str) -> str:
        sl = self.get(slice_id)
        if binding_id not in sl.attachments:
            raise NotFound(f"slice {slice_id!r} has no MAC binding {binding_id!r}")
        return sl.attachments[binding_id]

    def remove_mac(self, slice_id: str, binding_id: str) -> None:
        self.get_mac(slice_id, binding_id)
        del self.slices[slice_id].attachments[binding_id]
        self._changed()

    # -- port-MAC bindings
    def _new_port_mac(self, pb: PortBinding, data: Any) -> tuple[str, str]:
        data = _obj(data, ("id", "mac"), "port-MAC binding")
        if "mac" not in data:
            raise ValidationError("port-MAC binding: mac is required")
        mac = parse_mac(data["mac"])
        bid = parse_id(data["id"], "binding id") if "id" in data else _new_id("mac", pb.attachments)
        if bid in pb.attachments:
            raise Conflict(f"port binding {pb.id!r} already has a port-MAC binding {bid!r}")
        if mac in pb.attachments.values():
            raise Conflict(f"mac {mac} is already bound to port binding {pb.id!r}")
        pb.attachments[bid] = mac
        return bid, mac

    def add_port_mac(self, slice_id: str, port_binding_id: str, data: Any) -> tuple[str, str]:
        pb = self.get_port(slice_id, port_binding_id)
        result = self._new_port_mac(pb, data)
        self._changed()
        return result

    def get_port_mac(self, slice_id: str, port_binding_id: str, binding_id: str) -> str:
        pb = self.get_port(slice_id, port_binding_id)
        if binding_id not in pb.attachments:
            raise NotFound(f"port binding {port_binding_id!r} has no port-MAC binding {binding_id!r}")
        return pb.attachments[binding_id]

    def remove_port_mac(self, slice_id: str, port_binding_id: str, binding_id: str) -> None:
        self.get_port_mac(slice_id, port_binding_id, binding_id)
        del self.slices[slice_id].ports[port_binding_id].attachments[binding_id]
        self._changed()

    # -- options
    def set_config(self, data: Any) -> Config:
        data = _obj(data, ("restrict_hosts_on_port", "loose"), "config")
        new = copy.copy(self.config)
        for name in ("restrict_hosts_on_port", "loose"):
            if name in data:
                setattr(new, name, parse_bool(data[name], name))
        if new != self.config:
            self.config = new
            self._changed()
        return self.config

    # -- the slice function (the seed's chart)
    def lookup(self, dpid: int, port: int, vid: int, mac: str) -> str | None:
        """The slice a packet from host ``mac`` entering at (dpid, port, vid) belongs to, or None."""
        owner = self.port_owner(dpid, port, vid)
        sid = self.mac_slice(mac)
        if sid is not None:  # 1) MAC binding
            if self.config.loose or owner is None or owner[0] == sid:
                return sid
            return None
        if self.config.restrict_hosts_on_port:  # 2) port-MAC binding only
            if owner is not None and mac in owner[1].attachments.values():
                return owner[0]
            return None
        return owner[0] if owner is not None else None  # 3) port binding

    def seen(self, slice_id: str, mac: str, dpid: int, port: int, vid: int) -> bool:
        """Record where a MAC-bound host was seen; True when that is new (worth persisting)."""
        if self.mac_slice(mac) != slice_id:
            return False
        old = self.locations.get(mac)
        self.locations[mac] = Location(slice_id, dpid, port, vid, self.clock())
        moved = old is None or (old.dpid, old.port, old.vid) != (dpid, port, vid)
        self.locations_dirty |= moved
        return moved

    def flood_ports(self, slice_id: str, dpid: int, vid: int) -> set[int]:
        """Edge ports of a slice on one switch: its port bindings and its MAC-bound hosts' ports."""
        sl = self.slices.get(slice_id)
        if sl is None:
            return set()
        ports = {
            pb.port
            for pb in sl.ports.values()
            if pb.dpid == dpid and pb.vid == vid and (pb.attachments or not self.config.restrict_hosts_on_port)
        }
        now = self.clock()
        for mac, loc in list(self.locations.items()):
            if now - loc.seen > DYNAMIC_BINDING_TTL:
                del self.locations[mac]
            elif loc.slice_id == slice_id and loc.dpid == dpid and loc.vid == vid:
                ports.add(loc.port)
        return ports

    # -- (de)serialisation
    def to_dict(self, with_locations: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "config": self.config.to_dict(),
            "slices": [sl.to_dict() for sl in self.slices.values()],
        }
        if with_locations:
            data["locations"] = [
                {
                    "mac": m,
                    "slice": loc.slice_id,
                    "datapath_id": dpid_str(loc.dpid),
                    "port": loc.port,
                    "vid": loc.vid,
                    "seen": loc.seen,
                }
                for m, loc in self.locations.items()
            ]
        return data

    def load(self, data: Any) -> None:
        """Replace everything with ``data`` (the to_dict() form); all-or-nothing, listeners called once."""
        data = _obj(data, ("config", "slices", "locations"), "slice table")
        fresh = SliceTable(self.clock)
        if "config" in data:
            fresh.set_config(data["config"])
        slices = data.get("slices", [])
        if not isinstance(slices, list):
            raise ValidationError("slices must be a list")
        for item in slices:
            item = _obj(item, ("id", "description", "ports", "attachments"), "slice")
            sl = fresh.create_slice({k: v for k, v in item.items() if k in ("id", "description")})
            for port in item.get("ports", []):
                fresh.add_port(sl.id, port)
            for att in item.get("attachments", []):
                fresh.add_mac(sl.id, att)
        for loc in data.get("locations", []):
            try:
                mac = parse_mac(loc["mac"])
                if fresh.mac_slice(mac) == loc["slice"]:
                    fresh.locations[mac] = Location(
                        loc["slice"],
                        parse_dpid(loc["datapath_id"]),
                        parse_port(loc["port"]),
                        parse_vid(loc["vid"]),
                        float(loc["seen"]),
                    )
            except (KeyError, TypeError, ValueError, SliceError):
                continue  # a stale or damaged location is only a hint: skip it
        self.slices, self.config, self.locations = fresh.slices, fresh.config, fresh.locations
        self._changed()


# --- forwarding ----------------------------------------------------------------------------------


class Fdb:
    """One learning table per slice: (slice, dpid, vid, mac) -> port."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, int, int, str], int] = {}

    def learn(self, slice_id: str, dpid: int, vid: int, mac: str, port: int) -> bool:
        """Remember mac behind port; True when new or moved."""
        key = (slice_id, dpid, vid, mac)
        old = self.entries.get(key)
        self.entries[key] = port
        return old != port

    def port(self, slice_id: str, dpid: int, vid: int, mac: str) -> int | None:
        return self.entries.get((slice_id, dpid, vid, mac))

    def clear(self) -> None:
        self.entries.clear()


@dataclass(frozen=True)
class Decision:
    action: str  # "drop" | "forward" | "flood"
    slice_id: str | None = None
    ports: tuple[int, ...] = ()


def is_unicast(mac: str) -> bool:
    return not int(mac[:2], 16) & 1


def decide(table: SliceTable, fdb: Fdb, dpid: int, in_port: int, vid: int, src: str, dst: str) -> Decision:
    """What to do with a packet-in: learn the source within its slice, then drop, forward or flood."""
    src, dst = src.lower(), dst.lower()
    if not is_unicast(src):
        return Decision("drop")
    sid = table.lookup(dpid, in_port, vid, src)
    if sid is None:
        return Decision("drop")
    fdb.learn(sid, dpid, vid, src, in_port)
    table.seen(sid, src, dpid, in_port, vid)
    if is_unicast(dst):
        out = fdb.port(sid, dpid, vid, dst)
        if out is not None:
            if out == in_port:
                return Decision("drop", sid)
            return Decision("forward", sid, (out,))
    ports = tuple(sorted(table.flood_ports(sid, dpid, vid) - {in_port}))
    return Decision("flood", sid, ports)
