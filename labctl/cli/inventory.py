"""labctl inventory: the path of the lab's Ansible inventory (--json: paths and connection variables)."""

from __future__ import annotations

import argparse

from labctl.cli.common import SubParsers, add_verb, running
from labctl.cli_args import lab_args
from labctl.provisioning import inventory
from labctl.ui import views


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "inventory", cmd_inventory, "print the path of the lab's Ansible inventory")
    lab_args(p)
    p.add_argument("--json", action="store_true", help="print paths and connection vars as JSON")


def cmd_inventory(args: argparse.Namespace) -> int:
    target = running(args)
    state, topo = target.state, target.topo
    if args.json:
        ssh = target.addresses()
        views.print_json(
            {
                "lab": topo.name,
                "inventory": str(state.inventory),
                "ansible_cfg": str(state.ansible_cfg),
                "hosts": {h: inventory.host_vars(topo, state, h, ssh[h]) for h in topo.hosts},
            }
        )
    else:
        print(state.inventory)
    return 0
