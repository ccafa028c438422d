"""Slice logic of the sliceable switch: Trema's tables, validation, slice lookup and forwarding decisions.

Pure Python (no os_ken import) so it is unit-tested on the labctl machine and copied unchanged to the
controller host, where ``app.py`` drives it from OpenFlow events.

The data is Trema's database (sliceable_switch create_slice_table.sql, create_filter_table.sql):

* ``slices``: (number, id, description); a new slice gets the highest number + 1.
* ``bindings``: (type, datapath_id, port, vid, mac, id, slice_number), one flat table in insertion
  order. type 1 = port binding (dpid, port, vid; vid 0xffff = untagged), 2 = MAC binding (mac),
  4 = port-MAC binding (dpid, port, vid, mac: copied from a port binding of the slice when created,
  kept when that port binding goes, as in Trema). Binding ids are unique within a slice across types.
* ``filter``: packet filters (filters.py).

Semantics (after Trema's sliceable_switch, slice.c, as charted in the seed):

* ``lookup(dpid, port, vid, mac)``: 1) a MAC binding admits the host into its slice (on any port
  when ``loose``; otherwise not on a port that is port-bound to another slice); 2) with
  ``restrict_hosts_on_port`` only a port-MAC binding admits a host (on exactly that port); 3) without
  it, a port binding admits every host on the port. No slice: the packet is dropped.
* Then the filters decide (filters.evaluate): ALLOW forwards, anything else drops.
* One FDB per slice. Known destination: forward to the learned port. Broadcast/unknown unicast: flood
  only to the slice's ports (port bindings; under restrict its port-MAC bindings' ports) and to the
  ports where the slice's MAC-bound hosts were last seen (dynamic bindings, expire when idle).
"""

from __future__ import annotations

import copy
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import filters as fl

UNTAGGED = 0xFFFF
OFPP_MAX = 0xFFFFFF00
DYNAMIC_BINDING_TTL = 3600.0  # seconds a MAC-bound host's last location is kept without traffic
PORT, MAC, PORT_MAC = 0x01, 0x02, 0x04  # Trema's binding types
BINDING_TYPES = {PORT: "port", MAC: "MAC", PORT_MAC: "port-MAC"}

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
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
        raise ValidationError(f"{what} must be 1-64 characters of letters, digits, '_', '.', ':', '-', got {value!r}")
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
    """A datapath id: an integer, a decimal string (Trema's output form) or a '0x' hex string."""
    dpid: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        dpid = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"0x[0-9a-f]{1,16}", text):
            dpid = int(text, 16)
        elif re.fullmatch(r"[0-9]{1,20}", text):
            dpid = int(text)
    if dpid is None or not 0 <= dpid < 2**64:
        raise ValidationError(f"datapath_id must be a 64-bit integer, decimal or '0x' hex, got {value!r}")
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


def mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def int_mac(value: int) -> str:
    return fl.int_to_mac(value)


def port_binding_id(dpid: int, port: int, vid: int) -> str:
    """Trema's id of a port binding created without one (config.cgi create_port)."""
    return f"{dpid >> 32:04x}{dpid & 0xFFFFFFFF:08x}:{port:04x}:{vid:04x}"


# --- model ---------------------------------------------------------------------------------------


@dataclass
class Slice:
    number: int
    id: str
    description: str = ""

    def record(self) -> dict[str, Any]:
        return {"number": self.number, "id": self.id, "description": self.description}


@dataclass
class Binding:
    """One row of Trema's bindings table; unused columns are None (SQL NULL)."""

    type: int
    id: str
    slice_number: int
    dpid: int | None = None
    port: int | None = None
    vid: int | None = None
    mac: str | None = None

    @property
    def location(self) -> tuple[int | None, int | None, int | None]:
        return (self.dpid, self.port, self.vid)

    def record(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "datapath_id": self.dpid,
            "port": self.port,
            "vid": self.vid,
            "mac": mac_int(self.mac) if self.mac is not None else None,
            "id": self.id,
            "slice_number": self.slice_number,
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


class SliceTable:
    """Trema's slices, bindings and filter tables plus the options; every change calls the listeners."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.slices: dict[str, Slice] = {}
        self.bindings: list[Binding] = []
        self.filters: list[fl.Filter] = []
        self.config = Config()
        # mac -> last location of a MAC-bound host; kept when the binding goes (it counts again if the
        # host is bound to the same slice again, e.g. when the tables are saved and restored)
        self.locations: dict[str, Location] = {}
        self.generation = 0
        self.locations_dirty = False  # set when a MAC-bound host shows up somewhere new
        self.listeners: list[Callable[[SliceTable], None]] = []
        self.clock = clock
        self._index()

    # -- change notification
    def _index(self) -> None:
        numbers = {s.number: s.id for s in self.slices.values()}
        self._by_number = numbers
        self._port: dict[tuple[Any, ...], str] = {}
        self._mac: dict[str, str] = {}
        self._port_mac: dict[tuple[Any, ...], str] = {}
        for b in self.bindings:
            sid = numbers.get(b.slice_number)
            if sid is None:
                continue
            if b.type == PORT:
                self._port.setdefault(b.location, sid)
            elif b.type == MAC and b.mac is not None:
                self._mac.setdefault(b.mac, sid)
            elif b.type == PORT_MAC:
                self._port_mac.setdefault((*b.location, b.mac), sid)
        self._examined = fl.examined_fields(self.filters)

    def _changed(self) -> None:
        self.generation += 1
        self._index()
        for listener in list(self.listeners):
            listener(self)

    # -- queries
    def get(self, slice_id: str) -> Slice:
        try:
            return self.slices[slice_id]
        except KeyError:
            raise NotFound(f"no slice {slice_id!r}") from None

    def slice_id_of(self, number: int) -> str | None:
        return self._by_number.get(number)

    def bindings_of(self, slice_id: str, kind: int | None = None) -> list[Binding]:
        number = self.get(slice_id).number
        return [b for b in self.bindings if b.slice_number == number and (kind is None or b.type == kind)]

    def binding(self, slice_id: str, binding_id: str, kind: int) -> Binding:
        for b in self.bindings_of(slice_id, kind):
            if b.id == binding_id:
                return b
        raise NotFound(f"slice {slice_id!r} has no {BINDING_TYPES[kind]} binding {binding_id!r}")

    def port_macs(self, slice_id: str, port_binding_id: str) -> list[Binding]:
        """The port-MAC bindings on the location of a port binding."""
        where = self.binding(slice_id, port_binding_id, PORT).location
        return [b for b in self.bindings_of(slice_id, PORT_MAC) if b.location == where]

    def mac_slice(self, mac: str) -> str | None:
        return self._mac.get(mac)

    def port_owner(self, dpid: int, port: int, vid: int) -> str | None:
        return self._port.get((dpid, port, vid))

    def port_mac_owner(self, dpid: int, port: int, vid: int, mac: str) -> str | None:
        return self._port_mac.get((dpid, port, vid, mac))

    # -- slices
    def _new_slice_id(self) -> str:
        while True:  # config.cgi create_network: "%10u%06u%02u" of the time and a random number
            now = self.clock()
            sid = f"{int(now):10d}{int(now * 1e6) % 1000000:06d}{random.randrange(100):02d}"
            if sid not in self.slices:
                return sid

    def create_slice(self, data: Any) -> Slice:
        data = _obj(data, ("id", "description"), "slice")
        sid = parse_id(data["id"], "slice id") if data.get("id") is not None else self._new_slice_id()
        desc = _description(data.get("description"))
        if sid in self.slices:
            raise Conflict(f"slice {sid!r} already exists")
        sl = Slice(max((s.number for s in self.slices.values()), default=0) + 1, sid, desc)
        self.slices[sid] = sl
        self._changed()
        return sl

    def update_slice(self, slice_id: str, data: Any) -> Slice:
        """Trema's modify_network: the description is replaced ('' when not given)."""
        sl = self.get(slice_id)
        data = _obj(data, ("id", "description"), "slice")
        if "id" in data and data["id"] != slice_id:
            raise ValidationError("a slice's id cannot change")
        sl.description = _description(data.get("description"))  # no effect on forwarding: no flush
        return sl

    def delete_slice(self, slice_id: str) -> None:
        """The slice and its bindings go; filters naming its number stay (as in Trema)."""
        number = self.get(slice_id).number
        del self.slices[slice_id]
        self.bindings = [b for b in self.bindings if b.slice_number != number]
        self._changed()

    # -- bindings
    def _check_new_id(self, slice_id: str, binding_id: str) -> None:
        if any(b.id == binding_id for b in self.bindings_of(slice_id)):
            raise Conflict(f"slice {slice_id!r} already has a binding {binding_id!r}")

    def add_port(self, slice_id: str, data: Any) -> Binding:
        number = self.get(slice_id).number
        data = _obj(data, ("id", "datapath_id", "port", "vid"), "port binding")
        for req in ("datapath_id", "port"):
            if req not in data:
                raise ValidationError(f"port binding: {req} is required")
        dpid, port, vid = parse_dpid(data["datapath_id"]), parse_port(data["port"]), parse_vid(data.get("vid"))
        bid = parse_id(data["id"], "binding id") if data.get("id") is not None else port_binding_id(dpid, port, vid)
        self._check_new_id(slice_id, bid)
        owner = self.port_owner(dpid, port, vid)
        if owner is not None:
            raise Conflict(f"port {dpid_str(dpid)}:{port} vid {vid} is already bound to slice {owner!r}")
        b = Binding(PORT, bid, number, dpid, port, vid)
        self.bindings.append(b)
        self._changed()
        return b

    def add_mac(self, slice_id: str, data: Any) -> Binding:
        number = self.get(slice_id).number
        data = _obj(data, ("id", "mac"), "MAC binding")
        if "mac" not in data:
            raise ValidationError("MAC binding: mac is required")
        mac = parse_mac(data["mac"])
        bid = parse_id(data["id"], "binding id") if data.get("id") is not None else mac
        self._check_new_id(slice_id, bid)
        owner = self.mac_slice(mac)
        if owner is not None:
            raise Conflict(f"mac {mac} is already bound to slice {owner!r}")
        b = Binding(MAC, bid, number, mac=mac)
        self.bindings.append(b)
        self._changed()
        return b

    def add_port_mac(self, slice_id: str, port_binding_id: str, data: Any) -> Binding:
        """A MAC on the port of a port binding; no such port binding is 422, as in Trema."""
        number = self.get(slice_id).number
        data = _obj(data, ("id", "mac"), "port-MAC binding")
        if "mac" not in data:
            raise ValidationError("port-MAC binding: mac is required")
        mac = parse_mac(data["mac"])
        bid = parse_id(data["id"], "binding id") if data.get("id") is not None else mac.replace(":", "")
        self._check_new_id(slice_id, bid)
        try:
            dpid, port, vid = self.binding(slice_id, port_binding_id, PORT).location
        except NotFound as exc:
            raise Conflict(str(exc)) from None
        owner = self._port_mac.get((dpid, port, vid, mac))
        if owner is not None:
            raise Conflict(f"mac {mac} is already bound to port {port} of slice {owner!r}")
        b = Binding(PORT_MAC, bid, number, dpid, port, vid, mac)
        self.bindings.append(b)
        self._changed()
        return b

    def remove_binding(self, slice_id: str, binding_id: str, kind: int) -> None:
        b = self.binding(slice_id, binding_id, kind)
        self.bindings.remove(b)
        self._changed()

    # -- filters
    def _new_filter_id(self, taken: set[str]) -> str:
        while True:  # Filter.pm add_filter: "%10u%06u%04u"
            now = self.clock()
            fid = f"{int(now):10d}{int(now * 1e6) % 1000000:06d}{random.randrange(10000):04d}"
            if fid not in taken:
                return fid

    def slice_number(self, slice_id: str) -> int | None:
        s = self.slices.get(slice_id)
        return s.number if s is not None else None

    def add_filters(self, data: Any) -> list[fl.Filter]:
        """POST /filters: one object or a list; all are added or none (a duplicate id is 422)."""
        items = data if isinstance(data, list) else [data]
        taken = {f.id for f in self.filters}
        new: list[fl.Filter] = []
        for item in items:
            try:
                f = fl.from_rest(item, self.slice_number, lambda: self._new_filter_id(taken))
            except fl.FilterError as exc:
                raise ValidationError(str(exc)) from None
            except LookupError as exc:
                raise Conflict(str(exc)) from None
            if f.id in taken:
                raise Conflict(f"a filter {f.id!r} already exists")
            taken.add(f.id)
            new.append(f)
        self.filters.extend(new)
        self._changed()
        return new

    def get_filter(self, filter_id: str) -> fl.Filter:
        for f in self.filters:
            if f.id == filter_id:
                return f
        raise NotFound(f"no filter {filter_id!r}")

    def remove_filter(self, filter_id: str) -> None:
        self.filters.remove(self.get_filter(filter_id))
        self._changed()

    def filter_action(self, dpid: int, slice_id: str, frame: fl.Frame) -> int:
        return fl.evaluate(self.filters, dpid, self.get(slice_id).number, frame)

    @property
    def examined(self) -> set[str]:
        """Packet fields some filter looks at (flows must match them exactly)."""
        return self._examined

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
            if self.config.loose or owner is None or owner == sid:
                return sid
            return None
        if self.config.restrict_hosts_on_port:  # 2) port-MAC binding only
            return self.port_mac_owner(dpid, port, vid, mac)
        return owner  # 3) port binding

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
        """Edge ports of a slice on one switch: its port (or port-MAC) bindings and its MAC-bound hosts' ports."""
        if slice_id not in self.slices:
            return set()
        kind = PORT_MAC if self.config.restrict_hosts_on_port else PORT
        ports = {b.port for b in self.bindings_of(slice_id, kind) if b.dpid == dpid and b.vid == vid and b.port}
        now = self.clock()
        for mac, loc in list(self.locations.items()):
            if now - loc.seen > DYNAMIC_BINDING_TTL:
                del self.locations[mac]
            elif loc.slice_id == slice_id == self.mac_slice(mac) and loc.dpid == dpid and loc.vid == vid:
                ports.add(loc.port)  # only while the host is MAC-bound to the slice it was seen in
        return ports

    # -- Trema's tables as records (GET/PUT /db, the state file)
    def records(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "slices": [s.record() for s in self.slices.values()],
            "bindings": [b.record() for b in self.bindings],
            "filter": [f.record() for f in self.filters],
        }

    def load_records(self, data: Any) -> None:
        """Replace the three tables with ``data`` (the records() form); all-or-nothing."""
        data = _obj(data, ("slices", "bindings", "filter"), "tables")
        slices: dict[str, Slice] = {}
        for row in _rows(data, "slices"):
            row = _obj(row, ("number", "id", "description"), "slices record")
            s = Slice(_int(row.get("number"), "slices number", 1, 0xFFFF), parse_id(row.get("id"), "slice id"))
            s.description = _description(row.get("description"))
            if s.id in slices or s.number in {x.number for x in slices.values()}:
                raise Conflict(f"slices record {s.id!r}: duplicate id or number {s.number}")
            slices[s.id] = s
        numbers = {s.number for s in slices.values()}
        bindings = [_binding_record(row, numbers) for row in _rows(data, "bindings")]
        ids = [(b.slice_number, b.id) for b in bindings]
        if len(set(ids)) != len(ids):
            raise Conflict("bindings records: an id appears twice in one slice")
        try:
            filters = [fl.Filter.from_record(row) for row in _rows(data, "filter")]
        except fl.FilterError as exc:
            raise ValidationError(str(exc)) from None
        if len({f.id for f in filters}) != len(filters):
            raise Conflict("filter records: an id appears twice")
        self.slices, self.bindings, self.filters = slices, bindings, filters
        self._changed()

    # -- (de)serialisation: the state file, and the role's seed
    def to_dict(self, with_locations: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"config": self.config.to_dict(), "tables": self.records()}
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
        """Replace everything; all-or-nothing, listeners called once.

        ``data`` is the to_dict() form ({config, tables, locations}) or a seed: {config, slices:
        [{id, description, ports: [{id?, datapath_id, port, vid?, attachments: [{id?, mac}]}],
        attachments: [{id?, mac}]}], filters: [POST /filters objects]} (no filters: Trema's default
        ALLOW filter).
        """
        data = _obj(data, ("config", "tables", "slices", "filters", "locations"), "slice table")
        fresh = SliceTable(self.clock)
        if "config" in data:
            fresh.set_config(data["config"])
        if "tables" in data:
            fresh.load_records(data["tables"])
        else:
            slices = data.get("slices", [])
            if not isinstance(slices, list):
                raise ValidationError("slices must be a list")
            for item in slices:
                item = _obj(item, ("id", "description", "ports", "attachments"), "slice")
                sl = fresh.create_slice({k: v for k, v in item.items() if k in ("id", "description")})
                for port in item.get("ports", []):
                    port = _obj(port, ("id", "datapath_id", "port", "vid", "attachments"), "port binding")
                    pb = fresh.add_port(sl.id, {k: v for k, v in port.items() if k != "attachments"})
                    for att in port.get("attachments", []):
                        fresh.add_port_mac(sl.id, pb.id, att)
                for att in item.get("attachments", []):
                    fresh.add_mac(sl.id, att)
            fresh.filters = [fl.default_filter()]
            if "filters" in data:
                fresh.filters = []
                fresh.add_filters(data["filters"] or [])
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
        self.slices, self.bindings, self.filters = fresh.slices, fresh.bindings, fresh.filters
        self.config, self.locations = fresh.config, fresh.locations
        self._changed()


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 256:
        raise ValidationError("description must be a string of at most 256 characters")
    return value


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{what} must be an integer {low}..{high}, got {value!r}")
    return value


def _rows(data: dict[str, Any], name: str) -> list[Any]:
    rows = data.get(name, [])
    if not isinstance(rows, list):
        raise ValidationError(f"{name} must be a list of records")
    return rows


def _binding_record(row: Any, numbers: set[int]) -> Binding:
    row = _obj(row, ("type", "datapath_id", "port", "vid", "mac", "id", "slice_number"), "bindings record")
    kind = row.get("type")
    if kind not in BINDING_TYPES or isinstance(kind, bool):
        raise ValidationError(f"bindings record type must be 1 (port), 2 (MAC) or 4 (port-MAC), got {kind!r}")
    number = _int(row.get("slice_number"), "bindings record slice_number", 1, 0xFFFF)
    if number not in numbers:
        raise ValidationError(f"bindings record {row.get('id')!r}: no slice number {number}")
    b = Binding(kind, parse_id(row.get("id"), "binding id"), number)
    if kind in (PORT, PORT_MAC):
        b.dpid, b.port = parse_dpid(row.get("datapath_id")), parse_port(row.get("port"))
        b.vid = parse_vid(row.get("vid"))
    if kind in (MAC, PORT_MAC):
        mac = _int(row.get("mac"), "bindings record mac", 0, 2**48 - 1)
        b.mac = parse_mac(int_mac(mac))
    return b


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
    action: str  # "drop" (no slice / same port) | "deny" (a filter) | "forward" | "flood"
    slice_id: str | None = None
    ports: tuple[int, ...] = ()


def is_unicast(mac: str) -> bool:
    return not int(mac[:2], 16) & 1


def decide(
    table: SliceTable,
    fdb: Fdb,
    dpid: int,
    in_port: int,
    vid: int,
    src: str,
    dst: str,
    frame: fl.Frame | None = None,
) -> Decision:
    """What to do with a packet-in: slice lookup, learning, filters, then forward or flood.

    ``frame`` is the packet's OpenFlow 1.0 match for the filters (default: only the L2 header).
    """
    src, dst = src.lower(), dst.lower()
    if not is_unicast(src):
        return Decision("drop")
    sid = table.lookup(dpid, in_port, vid, src)
    if sid is None:
        return Decision("drop")
    fdb.learn(sid, dpid, vid, src, in_port)
    table.seen(sid, src, dpid, in_port, vid)
    if frame is None:
        frame = fl.Frame(in_port, mac_int(src), mac_int(dst), dl_vlan=vid)
    if table.filter_action(dpid, sid, frame) != fl.ALLOW:
        return Decision("deny", sid)
    if is_unicast(dst):
        out = fdb.port(sid, dpid, vid, dst)
        if out is not None:
            if out == in_port:
                return Decision("drop", sid)
            return Decision("forward", sid, (out,))
    ports = tuple(sorted(table.flood_ports(sid, dpid, vid) - {in_port}))
    return Decision("flood", sid, ports)


def check_settings(path: str) -> str | None:
    """The error in the seed of a controller settings file (controller.json), or None when it loads."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            seed = json.load(fh).get("seed", {})
        SliceTable().load(seed)
    except (OSError, ValueError, AttributeError, SliceError) as exc:
        return f"{path}: the seed slices/filters do not load: {exc}"
    return None


if __name__ == "__main__":  # the role validates controller.json with it: python3 -m labctl_sdn.slices FILE
    import sys

    error = check_settings(sys.argv[1]) if len(sys.argv) == 2 else "usage: python3 -m labctl_sdn.slices FILE"
    if error:
        sys.stderr.write(error + "\n")
    sys.exit(1 if error else 0)
