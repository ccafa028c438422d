"""`labctl sdn ...`: manage the sliceable switch's slices of a running lab over its REST API.

    labctl sdn [-f LAB.yml | --name LAB] [--url URL] [--host HOST] ACTION ...

The API URL is the controller host's address from the topology and the REST port its role resolved
(labctl.bundles.sdn_controller.checks.rest_url: never a URL the host reports), unless --url is given.
Results are printed as JSON; writes print nothing (the API answers 202 without a body, as Trema's does).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
from typing import Any

from labctl.checks.base import CheckFailed
from labctl.cli_args import lab_args
from labctl.errors import LabError

from ..files.controller.filters import REST_FIELDS
from .client import SdnApiError, SdnClient

GROUP = "sdn_controller"


def _onoff(text: str) -> bool:
    if text.lower() in ("on", "true", "yes", "1"):
        return True
    if text.lower() in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")


_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def _ident(text: str) -> str:
    """A slice, binding or filter id: one segment of the API's URL paths."""
    if not _IDENT.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an id: use 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
        )
    return text


def _url(text: str) -> str:
    """--url: the controller's REST API, an http(s) URL with a host."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL with a host")
    return text


def _filter_field(text: str) -> tuple[str, str]:
    """FIELD=VALUE of a filter, as Trema's `filter add ID priority=10 action=DENY dl_src=...`."""
    name, sep, value = text.partition("=")
    if not sep or name not in REST_FIELDS or name == "id":
        fields = ", ".join(f for f in REST_FIELDS if f != "id")
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE with FIELD one of {fields}; got {text!r}")
    return name, value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add the `sdn` verb to labctl's sub-command parsers."""
    p = subparsers.add_parser(
        "sdn",
        help="manage the sliceable switch's slices (REST API of the sdn controller)",
        description="Manage the sliceable switch's slices of a running lab through the controller's REST API.",
    )
    lab_args(p)
    p.add_argument("--url", type=_url, help="REST API base URL (default: from the lab's sdn_controller host)")
    p.add_argument("--host", help="sdn_controller host to talk to (default: the first)")
    p.set_defaults(fn=cmd_sdn)
    act = p.add_subparsers(dest="sdn_action", required=True, metavar="ACTION")

    act.add_parser("list", help="list slices")
    a = act.add_parser("show", help="show a slice with its bindings")
    a.add_argument("slice", type=_ident)
    a = act.add_parser("create", help="create a slice")
    a.add_argument("slice", type=_ident)
    a.add_argument("--description", default="")
    a = act.add_parser("delete", help="delete a slice")
    a.add_argument("slice", type=_ident)

    a = act.add_parser("add-port", help="bind a switch port (and VLAN) to a slice")
    a.add_argument("slice", type=_ident)
    a.add_argument("--port", type=int, required=True, help="OpenFlow port number")
    a.add_argument("--dpid", default="0x1", help="datapath id (default 0x1)")
    a.add_argument("--vid", type=int, help="VLAN id (default: untagged)")
    a.add_argument("--id", dest="binding_id", type=_ident, help="binding id (default: generated)")
    a = act.add_parser("remove-port", help="remove a port binding")
    a.add_argument("slice", type=_ident)
    a.add_argument("binding_id", type=_ident)

    a = act.add_parser("add-mac", help="bind a host's MAC address to a slice")
    a.add_argument("slice", type=_ident)
    a.add_argument("mac")
    a.add_argument("--id", dest="binding_id", type=_ident, help="binding id (default: generated)")
    a = act.add_parser("remove-mac", help="remove a MAC binding")
    a.add_argument("slice", type=_ident)
    a.add_argument("binding_id", type=_ident)

    a = act.add_parser("add-port-mac", help="bind a MAC under a port binding (used with restrict-hosts-on-port)")
    a.add_argument("slice", type=_ident)
    a.add_argument("port_binding_id", type=_ident)
    a.add_argument("mac")
    a.add_argument("--id", dest="binding_id", type=_ident, help="binding id (default: generated)")
    a = act.add_parser("remove-port-mac", help="remove a port-MAC binding")
    a.add_argument("slice", type=_ident)
    a.add_argument("port_binding_id", type=_ident)
    a.add_argument("binding_id", type=_ident)

    act.add_parser("filters", help="list packet filters")
    a = act.add_parser("show-filter", help="show a packet filter")
    a.add_argument("filter_id", type=_ident)
    a = act.add_parser(
        "add-filter",
        help="add a packet filter (first match by priority decides; no match drops)",
        description="Add a packet filter, e.g. add-filter deny-h1 priority=100 dl_src=02:00:c6:13:fa:01 "
        "action=DENY. Fields left out are wildcards; action defaults to DENY.",
    )
    a.add_argument("filter_id", type=_ident)
    a.add_argument("fields", nargs="*", type=_filter_field, metavar="FIELD=VALUE")
    a = act.add_parser("remove-filter", help="remove a packet filter")
    a.add_argument("filter_id", type=_ident)

    a = act.add_parser("config", help="show or change the options")
    a.add_argument("--restrict-hosts-on-port", type=_onoff, metavar="on|off")
    a.add_argument("--loose", type=_onoff, metavar="on|off")
    return p


def api_url(args: argparse.Namespace) -> str:
    """--url, else the controller host's REST URL as labctl derives it (its topology address, the
    role's port): never the URL a host's fact names."""
    if args.url:
        return str(args.url)
    from labctl.checks.context import context_for
    from labctl.lifecycle import find  # late: only needed when the URL comes from a lab

    from . import rest_url

    topo, state = find.resolve(args.file, args.name)
    running = find.require(topo, state)
    ctx = context_for(running)
    hosts = ctx.hosts(GROUP)
    if not hosts:
        raise LabError(f"sdn: lab {running.name!r} has no {GROUP} host. Fix: use a lab with one, or pass --url.")
    host = args.host or hosts[0]
    if host not in hosts:
        raise LabError(f"sdn: {host!r} is not in group {GROUP}. Fix: use one of: {', '.join(hosts)}.")
    try:
        return rest_url(ctx, host)
    except CheckFailed as exc:
        raise LabError(f"sdn: {exc}") from None
    finally:
        ctx.runner.close()


def run_action(client: SdnClient, args: argparse.Namespace) -> Any:
    action = args.sdn_action
    if action == "list":
        return client.slices()
    if action == "show":
        return client.slice(args.slice)
    if action == "create":
        return client.create_slice(args.slice, args.description)
    if action == "delete":
        return client.delete_slice(args.slice)
    if action == "add-port":
        return client.add_port(args.slice, args.dpid, args.port, args.vid, args.binding_id)
    if action == "remove-port":
        return client.remove_port(args.slice, args.binding_id)
    if action == "add-mac":
        return client.add_mac(args.slice, args.mac, args.binding_id)
    if action == "remove-mac":
        return client.remove_mac(args.slice, args.binding_id)
    if action == "add-port-mac":
        return client.add_port_mac(args.slice, args.port_binding_id, args.mac, args.binding_id)
    if action == "remove-port-mac":
        return client.remove_port_mac(args.slice, args.port_binding_id, args.binding_id)
    if action == "filters":
        return client.filters()
    if action == "show-filter":
        return client.filter(args.filter_id)
    if action == "add-filter":
        return client.add_filters({"id": args.filter_id, **dict(args.fields)})
    if action == "remove-filter":
        return client.remove_filter(args.filter_id)
    if action == "config":
        changes = {
            k: v
            for k, v in (("restrict_hosts_on_port", args.restrict_hosts_on_port), ("loose", args.loose))
            if v is not None
        }
        return client.set_config(**changes) if changes else client.config()
    raise LabError(f"sdn: unknown action {action!r}")


def _api_fix(exc: SdnApiError) -> str:
    if exc.status == 0:
        return ". Fix: check that the lab's sdn controller runs ('labctl smoke --only sdn_controller'), or the --url"
    return ". Fix: see 'labctl sdn list' for the slices, and the API's answer above"


def cmd_sdn(args: argparse.Namespace) -> int:
    client = SdnClient(api_url(args))
    try:
        result = run_action(client, args)
    except SdnApiError as exc:
        fix = "" if "Fix:" in str(exc) else _api_fix(exc)
        raise LabError(f"sdn {args.sdn_action}: {exc}{fix}") from None
    if result is not None:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0
