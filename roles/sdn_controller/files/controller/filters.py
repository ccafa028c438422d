"""Packet filters of the sliceable switch, after Trema's (sliceable_switch filter.c, Filter.pm, config.cgi).

Pure Python (no os_ken import): unit-tested here and copied unchanged to the controller host.

A filter is a row of Trema's ``filter`` table: an OpenFlow 1.0 match (``ofp_wildcards`` and the 12
fields), Trema's own ``wildcards`` over ``in_datapath_id`` and ``slice_number``, a ``priority``
(0-65535) and an ``action`` (0 ALLOW, 1 DENY, 2 LOCAL). The switch runs it on every packet it is
asked about, after the slice lookup: filters whose match has no wildcard at all come first, then the
others by descending priority (the later of equal priorities first); the first one that matches
decides, and no match at all means DENY (Trema's create_tables.sh therefore installs the filter
``default``: priority 0, everything wildcarded, ALLOW).

REST input (POST /filters) follows Filter.pm's set_default_filter_criteria: a missing field is 0, and
when ``ofp_wildcards`` (or ``wildcards``) is not given it is built from the missing fields (a missing
nw_src/nw_dst wildcards all its bits, ``a.b.c.d/n`` wildcards 32-n bits). Numbers may be JSON numbers,
decimal strings or ``0x`` hex strings; MACs ``aa:bb:cc:dd:ee:ff``; addresses dotted quads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

OFPFW_IN_PORT = 1 << 0
OFPFW_DL_VLAN = 1 << 1
OFPFW_DL_SRC = 1 << 2
OFPFW_DL_DST = 1 << 3
OFPFW_DL_TYPE = 1 << 4
OFPFW_NW_PROTO = 1 << 5
OFPFW_TP_SRC = 1 << 6
OFPFW_TP_DST = 1 << 7
OFPFW_NW_SRC_SHIFT = 8
OFPFW_NW_SRC_MASK = 0x3F << OFPFW_NW_SRC_SHIFT
OFPFW_NW_DST_SHIFT = 14
OFPFW_NW_DST_MASK = 0x3F << OFPFW_NW_DST_SHIFT
OFPFW_DL_VLAN_PCP = 1 << 20
OFPFW_NW_TOS = 1 << 21
OFPFW_ALL = (1 << 22) - 1

WILDCARD_IN_DATAPATH_ID = 1
WILDCARD_SLICE = 2
WILDCARD_ALL = WILDCARD_IN_DATAPATH_ID | WILDCARD_SLICE

ALLOW, DENY, LOCAL = 0, 1, 2
ACTIONS = {"ALLOW": ALLOW, "DENY": DENY, "LOCAL": LOCAL}
VLAN_NONE = 0xFFFF  # OpenFlow 1.0 dl_vlan of an untagged frame

# The single-bit wildcards, in Trema's display order (Filter.pm ofp_wildcards_to_string).
_FLAG_NAMES = (
    ("in_port", OFPFW_IN_PORT),
    ("dl_src", OFPFW_DL_SRC),
    ("dl_dst", OFPFW_DL_DST),
    ("dl_vlan", OFPFW_DL_VLAN),
    ("dl_vlan_pcp", OFPFW_DL_VLAN_PCP),
    ("dl_type", OFPFW_DL_TYPE),
    ("nw_tos", OFPFW_NW_TOS),
    ("nw_proto", OFPFW_NW_PROTO),
)
_TP_NAMES = (("tp_src", OFPFW_TP_SRC), ("tp_dst", OFPFW_TP_DST))
_NW = (("nw_src", OFPFW_NW_SRC_MASK, OFPFW_NW_SRC_SHIFT), ("nw_dst", OFPFW_NW_DST_MASK, OFPFW_NW_DST_SHIFT))
_MACS = (("dl_src", OFPFW_DL_SRC), ("dl_dst", OFPFW_DL_DST))

# Match fields: name -> (bits, wildcard flag). nw_src/nw_dst have prefix wildcards instead.
_FIELDS: dict[str, tuple[int, int]] = {
    "in_port": (32, OFPFW_IN_PORT),
    "dl_vlan": (16, OFPFW_DL_VLAN),
    "dl_vlan_pcp": (8, OFPFW_DL_VLAN_PCP),
    "dl_type": (16, OFPFW_DL_TYPE),
    "nw_tos": (8, OFPFW_NW_TOS),
    "nw_proto": (8, OFPFW_NW_PROTO),
    "tp_src": (16, OFPFW_TP_SRC),
    "tp_dst": (16, OFPFW_TP_DST),
}
REST_FIELDS = (
    "id",
    "priority",
    "ofp_wildcards",
    "in_port",
    "dl_src",
    "dl_dst",
    "dl_vlan",
    "dl_vlan_pcp",
    "dl_type",
    "nw_tos",
    "nw_proto",
    "nw_src",
    "nw_dst",
    "tp_src",
    "tp_dst",
    "wildcards",
    "in_datapath_id",
    "slice",
    "action",
)
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_IP_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?$")


class FilterError(ValueError):
    """Invalid filter input; the REST layer answers 400."""


# --- value parsing -------------------------------------------------------------------------------


def number(value: Any, what: str, bits: int) -> int:
    """A JSON number, a decimal string or a '0x' hex string, within ``bits`` bits."""
    result: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        result = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"0x[0-9a-f]+", text):
            result = int(text, 16)
        elif re.fullmatch(r"[0-9]+", text):
            result = int(text, 10)
    if result is None or not 0 <= result < 1 << bits:
        raise FilterError(f"{what} must be a {bits}-bit number (decimal or '0x' hex), got {value!r}")
    return result


def mac_to_int(value: Any, what: str) -> int:
    if isinstance(value, str) and _MAC_RE.match(value.strip()):
        return int(value.strip().replace(":", ""), 16)
    return number(value, what, 48)


def _c_hex(value: int) -> str:
    """C's and Perl's "%#x": 0 is "0", not "0x0"."""
    return f"{value:#x}" if value else "0"


def int_to_mac(value: int) -> str:
    digits = f"{value:012x}"
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def int_to_ip(value: int) -> str:
    return ".".join(str(value >> s & 0xFF) for s in (24, 16, 8, 0))


def ip_to_int(value: Any, what: str) -> tuple[int, int | None]:
    """(address, prefix length or None) from 'a.b.c.d[/n]', or a plain number."""
    if isinstance(value, str) and "." in value:
        m = _IP_RE.match(value.strip())
        if not m or any(int(o) > 255 for o in m.groups()[:4]) or (m.group(5) and int(m.group(5)) > 32):
            raise FilterError(f"{what} must be an IPv4 address a.b.c.d or a.b.c.d/n (n <= 32), got {value!r}")
        octets = [int(o) for o in m.groups()[:4]]
        addr = octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3]
        return addr, int(m.group(5)) if m.group(5) else None
    return number(value, what, 32), None


def ofp_wildcards_to_string(wc: int) -> str:
    names = [n for n, flag in _FLAG_NAMES if wc & flag]
    for name, mask, shift in _NW:
        if wc & mask:
            names.append(f"{name}:{min((wc & mask) >> shift, 32)}")
    names += [n for n, flag in _TP_NAMES if wc & flag]
    return ",".join(names) if names else "NONE"


def string_to_ofp_wildcards(text: str) -> int:
    wc = 0
    flags = dict(_FLAG_NAMES + _TP_NAMES)
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        m = re.fullmatch(r"(nw_src|nw_dst):(\d+)", part)
        if m:
            _, mask, shift = next(nw for nw in _NW if nw[0] == m.group(1))
            wc |= int(m.group(2)) << shift if int(m.group(2)) < 32 else mask
        elif part in flags:
            wc |= flags[part]
        elif part != "none":
            raise FilterError(
                f"ofp_wildcards: unknown field {part!r}; use a number or names of: "
                f"{', '.join(flags)}, nw_src:N, nw_dst:N"
            )
    return wc


def wildcards_to_string(wc: int) -> str:
    names = [n for n, flag in (("in_datapath_id", WILDCARD_IN_DATAPATH_ID), ("slice", WILDCARD_SLICE)) if wc & flag]
    return ",".join(names) if names else "NONE"


def string_to_wildcards(text: str) -> int:
    wc = 0
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part == "in_datapath_id":
            wc |= WILDCARD_IN_DATAPATH_ID
        elif part == "slice":
            wc |= WILDCARD_SLICE
        elif part != "none":
            raise FilterError(f"wildcards: unknown field {part!r}; use a number or names of: in_datapath_id, slice")
    return wc


def _wildcard_value(value: Any, what: str, bits: int, parse_names: Callable[[str], int]) -> int:
    if isinstance(value, str) and not re.fullmatch(r"\s*(0x[0-9a-fA-F]+|[0-9]+)\s*", value):
        return parse_names(value)
    return number(value, what, bits)


# --- the filter ----------------------------------------------------------------------------------


@dataclass
class Frame:
    """A packet as an OpenFlow 1.0 exact match (Trema's set_match_from_packet), plus where it came in."""

    in_port: int
    dl_src: int
    dl_dst: int
    dl_vlan: int = VLAN_NONE
    dl_vlan_pcp: int = 0
    dl_type: int = 0
    nw_tos: int = 0
    nw_proto: int = 0
    nw_src: int = 0
    nw_dst: int = 0
    tp_src: int = 0
    tp_dst: int = 0


@dataclass
class Filter:
    """One row of Trema's filter table (column order of create_filter_table.sql)."""

    priority: int
    ofp_wildcards: int
    in_port: int
    dl_src: int
    dl_dst: int
    dl_vlan: int
    dl_vlan_pcp: int
    dl_type: int
    nw_tos: int
    nw_proto: int
    nw_src: int
    nw_dst: int
    tp_src: int
    tp_dst: int
    wildcards: int
    in_datapath_id: int
    slice_number: int
    action: int
    id: str

    # -- Trema's table row
    def record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: Any) -> Filter:
        if not isinstance(data, dict):
            raise FilterError("a filter record must be a JSON object")
        columns = [f.name for f in fields(cls)]
        missing = [c for c in columns if c not in data]
        unknown = sorted(set(data) - set(columns))
        if missing or unknown:
            raise FilterError(
                f"filter record: columns must be exactly {', '.join(columns)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else "")
            )
        widths = dict.fromkeys(columns, 32) | {
            "priority": 16,
            "ofp_wildcards": 22,
            "dl_src": 48,
            "dl_dst": 48,
            "in_datapath_id": 64,
            "slice_number": 16,
            "wildcards": 2,
        }
        values: dict[str, Any] = {c: number(data[c], f"filter record {c}", widths[c]) for c in columns if c != "id"}
        values["id"] = parse_filter_id(data["id"])
        if values["action"] not in ACTIONS.values():
            raise FilterError(f"filter record action must be 0 (ALLOW), 1 (DENY) or 2 (LOCAL), got {data['action']!r}")
        return cls(**values)

    # -- REST form (config.cgi show_filters)
    def to_rest(self, slice_id: str | None) -> dict[str, Any]:
        action = {v: k for k, v in ACTIONS.items()}.get(self.action, f"UNDEFINED ({_c_hex(self.action)})")
        return {
            "priority": self.priority,
            "ofp_wildcards": ofp_wildcards_to_string(self.ofp_wildcards),
            "in_port": self.in_port,
            "dl_src": int_to_mac(self.dl_src),
            "dl_dst": int_to_mac(self.dl_dst),
            "dl_vlan": self.dl_vlan,
            "dl_vlan_pcp": self.dl_vlan_pcp,
            "dl_type": self.dl_type,
            "nw_tos": self.nw_tos,
            "nw_proto": self.nw_proto,
            "nw_src": int_to_ip(self.nw_src),
            "nw_dst": int_to_ip(self.nw_dst),
            "tp_src": self.tp_src,
            "tp_dst": self.tp_dst,
            "wildcards": wildcards_to_string(self.wildcards),
            "in_datapath_id": self.in_datapath_id,
            "slice": slice_id if slice_id is not None else f"UNDEFINED ({_c_hex(self.slice_number)})",
            "action": action,
            "id": self.id,
        }

    # -- matching (filter.c compare_filter_entry against a packet's exact match)
    @property
    def exact(self) -> bool:
        return self.ofp_wildcards == 0 and self.wildcards == 0

    def matches(self, dpid: int, slice_number: int, frame: Frame) -> bool:
        if not self.wildcards & WILDCARD_IN_DATAPATH_ID and self.in_datapath_id != dpid:
            return False
        if not self.wildcards & WILDCARD_SLICE and self.slice_number != slice_number:
            return False
        wc = self.ofp_wildcards
        for name, (_, flag) in _FIELDS.items():
            if not wc & flag and getattr(self, name) != getattr(frame, name):
                return False
        for name, flag in _MACS:
            if not wc & flag and getattr(self, name) != getattr(frame, name):
                return False
        for name, mask, shift in _NW:
            ignored = (wc & mask) >> shift
            if ignored < 32:
                netmask = (0xFFFFFFFF << ignored) & 0xFFFFFFFF
                if (getattr(self, name) ^ getattr(frame, name)) & netmask:
                    return False
        return True

    def examined(self) -> set[str]:
        """The packet fields this filter looks at (the rest are wildcarded)."""
        wc = self.ofp_wildcards
        names = {n for n, (_, flag) in _FIELDS.items() if not wc & flag}
        names |= {n for n, flag in _MACS if not wc & flag}
        names |= {n for n, mask, shift in _NW if (wc & mask) >> shift < 32}
        return names


def parse_filter_id(value: Any) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise FilterError(f"filter id must be 1-64 characters of letters, digits, '_', '.', ':', '-', got {value!r}")
    return value


def from_rest(data: Any, slice_number: Callable[[str], int | None], new_id: Callable[[], str]) -> Filter:
    """A filter from a POST /filters object (Filter.pm add_filter + set_default_filter_criteria).

    ``slice_number(id)`` gives a slice's number or None when there is no such slice (LookupError is
    raised then, the REST layer answers 422).
    """
    if not isinstance(data, dict):
        raise FilterError("each filter must be a JSON object")
    unknown = sorted(set(data) - set(REST_FIELDS))
    if unknown:
        raise FilterError(f"filter: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(REST_FIELDS)}")
    given = {k: v for k, v in data.items() if v is not None}
    build_ofp = "ofp_wildcards" not in given
    ofp_wc = 0 if build_ofp else _wildcard_value(given["ofp_wildcards"], "ofp_wildcards", 22, string_to_ofp_wildcards)
    values, ofp_wc = _match_values(given, build_ofp, ofp_wc)

    build_wc = "wildcards" not in given
    wc = 0 if build_wc else _wildcard_value(given["wildcards"], "wildcards", 2, string_to_wildcards)
    dpid = number(given["in_datapath_id"], "in_datapath_id", 64) if "in_datapath_id" in given else 0
    if "in_datapath_id" not in given and build_wc:
        wc |= WILDCARD_IN_DATAPATH_ID
    number_of_slice = _slice_of(given, slice_number)
    if not given.get("slice") and build_wc:  # no slice: any slice
        wc |= WILDCARD_SLICE
    action_text = given.get("action", "DENY")
    if not isinstance(action_text, str) or action_text.upper() not in ACTIONS:
        raise FilterError(f"action must be ALLOW, DENY or LOCAL, got {action_text!r}")
    return Filter(
        priority=number(given["priority"], "priority", 16) if "priority" in given else 0,
        ofp_wildcards=ofp_wc,
        wildcards=wc,
        in_datapath_id=dpid,
        slice_number=number_of_slice,
        action=ACTIONS[action_text.upper()],
        id=parse_filter_id(given["id"]) if "id" in given else new_id(),
        **values,
    )


def _match_values(given: dict[str, Any], build_ofp: bool, ofp_wc: int) -> tuple[dict[str, int], int]:
    """The filter's match fields from the POSTed object (0 when absent) and the OpenFlow wildcards with
    every absent field added (when the wildcards are built, not given)."""
    values: dict[str, int] = {}
    for name, (bits, flag) in _FIELDS.items():
        if name in given:
            values[name] = number(given[name], name, bits)
        else:
            values[name] = 0
            ofp_wc |= flag if build_ofp else 0
    for name, flag in _MACS:
        if name in given:
            values[name] = mac_to_int(given[name], name)
        else:
            values[name] = 0
            ofp_wc |= flag if build_ofp else 0
    for name, mask, shift in _NW:
        if name in given:
            values[name], prefix = ip_to_int(given[name], name)
            if build_ofp and prefix is not None:
                ofp_wc |= (32 - prefix) << shift
        else:
            values[name] = 0
            ofp_wc |= mask if build_ofp else 0
    return values, ofp_wc


def _slice_of(given: dict[str, Any], slice_number: Callable[[str], int | None]) -> int:
    """The number of the filter's slice (0: no slice given); LookupError for a slice that does not exist."""
    slice_id = given.get("slice", "")
    if not isinstance(slice_id, str):
        raise FilterError(f"slice must be a slice id (string), got {slice_id!r}")
    if not slice_id:
        return 0
    found = slice_number(slice_id)
    if found is None:
        raise LookupError(f"filter: no slice {slice_id!r}")
    return found


def default_filter() -> Filter:
    """Trema's create_tables.sh: ``filter add default priority=0 action=ALLOW``."""
    return from_rest({"id": "default", "priority": 0, "action": "ALLOW"}, lambda _s: None, lambda: "default")


# --- evaluation ----------------------------------------------------------------------------------


def ordered(filters: Iterable[Filter]) -> list[Filter]:
    """Lookup order of filter.c: exact entries first, then by descending priority, the later first."""
    indexed = list(enumerate(filters))
    indexed.sort(key=lambda item: (not item[1].exact, -item[1].priority, -item[0]))
    return [f for _, f in indexed]


def evaluate(filters: Iterable[Filter], dpid: int, slice_number: int, frame: Frame) -> int:
    """The action of the first matching filter; DENY when none matches (filter.c filter())."""
    for f in ordered(filters):
        if f.matches(dpid, slice_number, frame):
            return f.action
    return DENY


def examined_fields(filters: Iterable[Filter]) -> set[str]:
    """Packet fields any filter looks at: flows must match them so that the verdict holds for the flow."""
    out: set[str] = set()
    for f in filters:
        out |= f.examined()
    return out
