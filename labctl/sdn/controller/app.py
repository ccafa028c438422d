"""os-ken (OpenFlow 1.3) sliceable switch: a learning L2 switch partitioned into slices.

Runs on the controller host under ``osken-manager`` (Debian's python3-os-ken 2.5) as
``osken-manager --ofp-tcp-listen-port 6653 labctl_sdn.app`` with the package directory on PYTHONPATH.
Settings come from the JSON file named by $SDN_CONTROLLER_CONFIG:

    {"rest_host": "198.18.2.14", "rest_port": 8080, "flow_idle_timeout": 60, "drop_hard_timeout": 10,
     "state_file": "/var/lib/sdn-controller/state.json", "seed": {"config": {...}, "slices": [...]}}

At start the slices are the seed's, unless the state file (written after every REST change) was made
from the same seed: then the run-time state wins. The decisions live in slices.py; this module only
turns them into OpenFlow messages, and flushes its flows (by cookie) whenever the slices change.
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
from os_ken.lib.packet import ether_types, ethernet, packet, vlan
from os_ken.ofproto import ofproto_v1_3

from . import rest, slices

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
        decision = slices.decide(self.table, self.fdb, dp.id, in_port, vid, eth.src, eth.dst)
        if self.table.locations_dirty:
            self._persist()
        if decision.action == "drop":
            if decision.slice_id is None:  # no slice admits this host here: drop for a while
                self.logger.debug("drop %s on %s:%d vid %d", eth.src, slices.dpid_str(dp.id), in_port, vid)
                match = self._match(parser, in_port, vid, eth.src)
                self._add_flow(dp, match, [], hard=int(self.settings["drop_hard_timeout"]))
            return
        actions = [parser.OFPActionOutput(p) for p in decision.ports]
        if decision.action == "forward":
            match = self._match(parser, in_port, vid, eth.src, eth.dst)
            self._add_flow(dp, match, actions, idle=int(self.settings["flow_idle_timeout"]))
        if not actions:
            return
        data = msg.data if msg.buffer_id == ofp.OFP_NO_BUFFER else None
        dp.send_msg(
            parser.OFPPacketOut(datapath=dp, buffer_id=msg.buffer_id, in_port=in_port, actions=actions, data=data)
        )
