"""os-ken (OpenFlow 1.3) sliceable switch: a learning L2 switch partitioned into slices.

Runs on the controller host under ``osken-manager`` (Debian's python3-os-ken 2.5) as
``osken-manager --ofp-tcp-listen-port 6653 labctl_sdn.app`` with the package directory on PYTHONPATH.
Settings come from the JSON file named by $SDN_CONTROLLER_CONFIG:

    {"rest_host": "198.18.2.14", "rest_port": 8080, "flow_idle_timeout": 60, "drop_hard_timeout": 10,
     "state_file": "/var/lib/sdn-controller/state.json",
     "seed": {"config": {...}, "slices": [...], "filters": [...]}}

At start the slices and filters are the seed's, unless the state file (written after every REST change)
was made from the same seed: then the run-time state wins. The decisions live in slices.py and
filters.py; this module only turns them into OpenFlow messages, and flushes its flows (by cookie)
whenever the slices, filters or options change.

Filters are applied as Trema applies them: on the packet-in of each new flow, after the slice lookup.
ALLOW installs the forwarding flow, DENY (and LOCAL, not implemented: no redirection to the
controller's IP stack) installs a drop flow for drop_hard_timeout seconds. Both flows match exactly the
packet fields the filters look at (on top of in_port, VLAN and MACs), so every packet a flow carries
or drops gets the verdict the filters would give it.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, ClassVar

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.lib.packet import arp, ether_types, ethernet, icmp, ipv4, packet, tcp, udp, vlan
from os_ken.ofproto import ofproto_v1_3

from . import filters, rest, slices

COOKIE = 0x51_1CE0_0000_0001  # every flow this app installs carries it (the table-miss flow does not)
CONFIG_ENV = "SDN_CONTROLLER_CONFIG"
DEFAULT_CONFIG = "/etc/sdn-controller/controller.json"
PRIORITY_FLOW = 100
PRIORITY_MISS = 0

DEFAULT_SETTINGS: dict[str, Any] = {
    "rest_host": "127.0.0.1",
    "rest_port": 8080,
    "flow_idle_timeout": 60,
    "drop_hard_timeout": 10,
    "state_file": "",
    "seed": {"config": {}, "slices": []},
}
_L3_FIELDS = {"dl_type", "nw_tos", "nw_proto", "nw_src", "nw_dst", "tp_src", "tp_dst"}


def seed_digest(seed: Any) -> str:
    return hashlib.sha256(json.dumps(seed, sort_keys=True).encode()).hexdigest()


class SliceableSwitch(app_manager.OSKenApp):
    OFP_VERSIONS: ClassVar[list[int]] = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        path = os.environ.get(CONFIG_ENV, DEFAULT_CONFIG)
        self.settings = dict(DEFAULT_SETTINGS)
        with open(path, encoding="utf-8") as fh:
            self.settings.update(json.load(fh))
        self.table = slices.SliceTable()
        self.fdb = slices.Fdb()
        self.datapaths: dict[int, Any] = {}
        self._load_state()
        self.table.listeners.append(self._slices_changed)
        self.rest_thread = hub.spawn(self._serve_rest)

    def _serve_rest(self) -> None:
        """Serve the REST API; retry while the address is not there yet (the switch keeps working)."""
        api = rest.RestApi(self.table, on_change=self._persist)
        listen = (self.settings["rest_host"], int(self.settings["rest_port"]))
        self.logger.info("sliceable switch: %d slices, REST API on http://%s:%d", len(self.table.slices), *listen)
        while True:
            try:
                server = hub.WSGIServer(listen, api)
            except OSError as exc:
                self.logger.warning("REST API cannot bind %s:%d (%s); retrying in 2 s", *listen, exc)
                hub.sleep(2)
                continue
            server.serve_forever()
            return

    # -- state -----------------------------------------------------------------------------------
    def _load_state(self) -> None:
        seed = self.settings["seed"]
        digest = seed_digest(seed)
        state_file = self.settings.get("state_file")
        if state_file and os.path.exists(state_file):
            try:
                with open(state_file, encoding="utf-8") as fh:
                    saved = json.load(fh)
                if saved.get("seed_sha256") == digest:
                    self.table.load(saved["table"])
                    self.logger.info("loaded run-time slice state from %s", state_file)
                    return
                self.logger.info("%s was made from another seed: starting from the seed", state_file)
            except (OSError, ValueError, KeyError, slices.SliceError) as exc:
                self.logger.warning("ignoring %s: %s", state_file, exc)
        self.table.load(seed)

    def _persist(self) -> None:
        state_file = self.settings.get("state_file")
        self.table.locations_dirty = False
        if not state_file:
            return
        data = {"seed_sha256": seed_digest(self.settings["seed"]), "table": self.table.to_dict(with_locations=True)}
        tmp = f"{state_file}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1)
            os.replace(tmp, state_file)
        except OSError as exc:
            self.logger.error("cannot write %s: %s", state_file, exc)

    def _slices_changed(self, _table: slices.SliceTable) -> None:
        """Slices or options changed: forget what was learned and remove every flow of this app."""
        self.fdb.clear()
        for dp in list(self.datapaths.values()):
            self._delete_flows(dp)
        self.logger.info("slices changed (generation %d): flows flushed", self.table.generation)

    # -- OpenFlow helpers ------------------------------------------------------------------------
    def _delete_flows(self, dp: Any) -> None:
        ofp, parser = dp.ofproto, dp.ofproto_parser
        dp.send_msg(
            parser.OFPFlowMod(
                dp,
                cookie=COOKIE,
                cookie_mask=0xFFFFFFFFFFFFFFFF,
                table_id=ofp.OFPTT_ALL,
                command=ofp.OFPFC_DELETE,
                out_port=ofp.OFPP_ANY,
                out_group=ofp.OFPG_ANY,
                match=parser.OFPMatch(),
            )
        )

    @staticmethod
    def _match(parser: Any, in_port: int, vid: int, src: str, dst: str | None = None) -> Any:
        fields: dict[str, Any] = {"in_port": in_port, "eth_src": src}
        fields["vlan_vid"] = 0x0000 if vid == slices.UNTAGGED else (0x1000 | vid)
        if dst is not None:
            fields["eth_dst"] = dst
        return parser.OFPMatch(**fields)

    @staticmethod
    def _flow_match(parser: Any, frame: filters.Frame, vid: int, src: str, dst: str, examined: set[str]) -> Any:
        """(in_port, VLAN, MACs) plus, as OpenFlow 1.3 fields, every packet field a filter looks at."""
        m: dict[str, Any] = {"in_port": frame.in_port, "eth_src": src, "eth_dst": dst}
        m["vlan_vid"] = 0x0000 if vid == slices.UNTAGGED else (0x1000 | vid)
        if "dl_vlan_pcp" in examined and vid != slices.UNTAGGED:
            m["vlan_pcp"] = frame.dl_vlan_pcp
        if not examined & _L3_FIELDS:
            return parser.OFPMatch(**m)
        m["eth_type"] = frame.dl_type
        if frame.dl_type == ether_types.ETH_TYPE_IP:
            if "nw_tos" in examined:
                m["ip_dscp"] = frame.nw_tos >> 2
            if examined & {"nw_proto", "tp_src", "tp_dst"}:
                m["ip_proto"] = frame.nw_proto
            if "nw_src" in examined:
                m["ipv4_src"] = filters.int_to_ip(frame.nw_src)
            if "nw_dst" in examined:
                m["ipv4_dst"] = filters.int_to_ip(frame.nw_dst)
            ports = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst"), 1: ("icmpv4_type", "icmpv4_code")}
            if frame.nw_proto in ports:
                for field, name in zip(("tp_src", "tp_dst"), ports[frame.nw_proto], strict=True):
                    if field in examined:
                        m[name] = getattr(frame, field)
        elif frame.dl_type == ether_types.ETH_TYPE_ARP:
            for field, name in (("nw_proto", "arp_op"), ("nw_src", "arp_spa"), ("nw_dst", "arp_tpa")):
                if field in examined:
                    value = getattr(frame, field)
                    m[name] = filters.int_to_ip(value) if field != "nw_proto" else value
        return parser.OFPMatch(**m)

    @staticmethod
    def _frame(pkt: Any, in_port: int, eth: Any, tag: Any) -> filters.Frame:
        """The packet as Trema's OpenFlow 1.0 exact match (set_match_from_packet)."""
        frame = filters.Frame(in_port, slices.mac_int(eth.src), slices.mac_int(eth.dst), dl_type=eth.ethertype)
        if tag is not None:
            frame.dl_vlan, frame.dl_vlan_pcp, frame.dl_type = tag.vid, tag.pcp, tag.ethertype
        ip, req = pkt.get_protocol(ipv4.ipv4), pkt.get_protocol(arp.arp)
        if ip is not None:
            frame.nw_tos, frame.nw_proto = ip.tos & 0xFC, ip.proto
            frame.nw_src, frame.nw_dst = filters.ip_to_int(ip.src, "ip")[0], filters.ip_to_int(ip.dst, "ip")[0]
            l4 = pkt.get_protocol(tcp.tcp) or pkt.get_protocol(udp.udp)
            if l4 is not None:
                frame.tp_src, frame.tp_dst = l4.src_port, l4.dst_port
            echo = pkt.get_protocol(icmp.icmp)
            if echo is not None:
                frame.tp_src, frame.tp_dst = echo.type, echo.code
        elif req is not None:
            frame.nw_proto = req.opcode & 0xFF
            frame.nw_src, frame.nw_dst = filters.ip_to_int(req.src_ip, "ip")[0], filters.ip_to_int(req.dst_ip, "ip")[0]
        return frame

    def _add_flow(
        self,
        dp: Any,
        match: Any,
        actions: list[Any],
        idle: int = 0,
        hard: int = 0,
        priority: int = PRIORITY_FLOW,
        cookie: int = COOKIE,
    ) -> None:
        ofp, parser = dp.ofproto, dp.ofproto_parser
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] if actions else []
        dp.send_msg(
            parser.OFPFlowMod(
                dp,
                cookie=cookie,
                priority=priority,
                match=match,
                instructions=inst,
                idle_timeout=idle,
                hard_timeout=hard,
            )
        )

    # -- events ----------------------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        self._delete_flows(dp)  # flows of an earlier run may follow older slices
        miss = [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)]
        self._add_flow(dp, parser.OFPMatch(), miss, priority=PRIORITY_MISS, cookie=0)
        self.logger.info("switch %s connected", slices.dpid_str(dp.id))

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def state_change(self, ev: Any) -> None:
        dp = ev.datapath
        if ev.state == MAIN_DISPATCHER and dp.id is not None:
            self.datapaths[dp.id] = dp
        elif ev.state == DEAD_DISPATCHER and dp.id in self.datapaths:
            del self.datapaths[dp.id]
            self.logger.info("switch %s disconnected", slices.dpid_str(dp.id))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev: Any) -> None:
        msg = ev.msg
        dp = msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        in_port = msg.match["in_port"]
        pkt = packet.Packet(msg.data)
        eth = pkt.get_protocol(ethernet.ethernet)
        if eth is None or eth.ethertype == ether_types.ETH_TYPE_LLDP:
            return
        tag = pkt.get_protocol(vlan.vlan)
        vid = tag.vid if tag is not None else slices.UNTAGGED
        frame = self._frame(pkt, in_port, eth, tag)
        decision = slices.decide(self.table, self.fdb, dp.id, in_port, vid, eth.src, eth.dst, frame)
        if self.table.locations_dirty:
            self._persist()
        if decision.action == "deny":  # a filter (or no filter at all) refuses this flow
            self.logger.debug("filter: deny %s on %s:%d", frame, slices.dpid_str(dp.id), in_port)
            match = self._flow_match(parser, frame, vid, eth.src, eth.dst, self.table.examined)
            self._add_flow(dp, match, [], hard=int(self.settings["drop_hard_timeout"]))
            return
        if decision.action == "drop":
            if decision.slice_id is None:  # no slice admits this host here: drop for a while
                self.logger.debug("drop %s on %s:%d vid %d", eth.src, slices.dpid_str(dp.id), in_port, vid)
                match = self._match(parser, in_port, vid, eth.src)
                self._add_flow(dp, match, [], hard=int(self.settings["drop_hard_timeout"]))
            return
        actions = [parser.OFPActionOutput(p) for p in decision.ports]
        if decision.action == "forward":
            match = self._flow_match(parser, frame, vid, eth.src, eth.dst, self.table.examined)
            self._add_flow(dp, match, actions, idle=int(self.settings["flow_idle_timeout"]))
        if not actions:
            return
        data = msg.data if msg.buffer_id == ofp.OFP_NO_BUFFER else None
        dp.send_msg(
            parser.OFPPacketOut(datapath=dp, buffer_id=msg.buffer_id, in_port=in_port, actions=actions, data=data)
        )
