"""The lab as a picture: networks, hosts (groups, addresses, state), a gateway's port forwards and the
SDN slices, rendered as Mermaid or Graphviz DOT text, SVG (Graphviz's `dot`) or one HTML page.

:func:`build` gathers the model (live forwards and states when the lab is up, else the topology's and
the roles' defaults); the renderers are pure functions of the model."""

from __future__ import annotations

import contextlib
import html
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from labctl import paths, yamlload
from labctl.checks import bundles
from labctl.errors import LabError
from labctl.lifecycle import status
from labctl.lifecycle.model import Lab
from labctl.topology import DEFAULT, Topology

FORMATS = ("mermaid", "dot", "svg", "html")


@dataclass
class GraphHost:
    name: str
    groups: list[str]
    addresses: dict[str, str]  # network -> address
    state: str = "not up"


@dataclass
class Model:
    lab: str
    networks: dict[str, str]  # name -> subnet
    routes: list[tuple[str, str, str]]  # (from network, to network, via host)
    hosts: list[GraphHost]
    forwards: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # gateway -> forwards
    slices: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # controller -> slices
    live: bool = False


def role_default(role: str, name: str) -> Any:
    """A variable's default from roles/<role>/defaults/main.yml (None when absent)."""
    path = paths.ROLES_DIR / role / "defaults" / "main.yml"
    if not path.is_file():
        return None
    return (yamlload.load(path.read_text(), str(path)) or {}).get(name)


def topology_model(topo: Topology) -> Model:
    """The model from the topology alone (forwards and slices from its vars, else the roles' defaults)."""
    model = Model(
        lab=topo.name,
        networks={n.name: str(n.subnet) for n in topo.networks.values()},
        routes=[(n.name, to, via) for n in topo.networks.values() for to, via in n.routes],
        hosts=[
            GraphHost(h.name, list(h.groups), dict(h.addresses) or ({"ssh": h.address} if h.address else {}))
            for h in topo.hosts.values()
        ],
    )
    for h in topo.hosts.values():  # what the roles' bundles draw: a gateway's forwards, a controller's slices
        notes = bundles.graph_notes(topo, h.name)
        if "forwards" in notes:
            model.forwards[h.name] = notes["forwards"]
        if "slices" in notes:
            model.slices[h.name] = notes["slices"]
    return model


def build(running: Lab) -> Model:
    """The model of a lab: live host states and a gateway's forwards in force when it is up."""
    model = topology_model(running.topo)
    if not running.state.exists():
        return model
    states = {row["name"]: row["state"] for row in status.status(running)}
    model.live = True
    for h in model.hosts:
        h.state = states.get(h.name, "missing")
    for gw in model.forwards:
        if states.get(gw) == "running":
            with contextlib.suppress(LabError):  # unreachable: keep the topology's forwards
                model.forwards[gw] = bundles.host_details(running, gw).get("forwards", model.forwards[gw])
    return model


def slice_members(slice_: dict[str, Any]) -> list[str]:
    """The emulated hosts of a slice: its ports' ids and its MAC bindings' ids."""
    members = [str(p.get("id")) for p in slice_.get("ports", [])]
    members += [str(a.get("id")) for a in slice_.get("attachments", []) if str(a.get("id")) not in members]
    return members


def forward_target(forward: dict[str, Any], model: Model) -> str | None:
    """The lab host a forward goes to (by name, or by the address iptables shows)."""
    if forward.get("to_host"):
        return str(forward["to_host"])
    for h in model.hosts:
        if forward.get("to_address") in h.addresses.values():
            return h.name
    return None


def forward_label(f: dict[str, Any]) -> str:
    to = f.get("to_host") or f.get("to_address")
    return f"{f.get('name')}: {f.get('protocol')}/{f.get('port')} → {to}:{f.get('to_port') or f.get('port')}"


def _id(prefix: str, name: str) -> str:
    return prefix + "_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _host_lines(h: GraphHost) -> list[str]:
    lines = [h.name, ", ".join(h.groups) or "no group"]
    lines += [f"{net} {addr}" for net, addr in h.addresses.items()]
    if h.state != "not up":
        lines.append(h.state)
    return lines


def to_mermaid(model: Model) -> str:
    out = ["flowchart LR", f"  %% lab {model.lab}"]
    for net, subnet in model.networks.items():
        out.append(f'  {_id("net", net)}{{{{"{net}<br/>{subnet}"}}}}')
    for h in model.hosts:
        out.append(f'  {_id("host", h.name)}["{"<br/>".join(_host_lines(h))}"]')
    for h in model.hosts:
        for net, addr in h.addresses.items():
            if net in model.networks:
                out.append(f'  {_id("host", h.name)} ---|"{addr}"| {_id("net", net)}')
    for src, to, via in model.routes:
        if to == DEFAULT:  # everything leaving the network goes to the via host
            out.append(f'  {_id("net", src)} -.->|"default route"| {_id("host", via)}')
        else:
            out.append(f'  {_id("net", src)} -.->|"route via {via}"| {_id("net", to)}')
    for gw, forwards in model.forwards.items():
        for f in forwards:
            target = forward_target(f, model)
            if target:
                out.append(f'  {_id("host", gw)} ==>|"{forward_label(f)}"| {_id("host", target)}')
    for ctl, slices in model.slices.items():
        out.append(f'  subgraph {_id("slices", ctl)}["SDN slices on {ctl}"]')
        for s in slices:
            out.append(f'    {_id("slice", ctl + "_" + str(s["id"]))}(["{s["id"]}: {", ".join(slice_members(s))}"])')
        out.append("  end")
        out.append(f"  {_id('host', ctl)} --- {_id('slices', ctl)}")
    return "\n".join(out) + "\n"


def _dq(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(model: Model) -> str:
    out = [
        f"digraph {_dq('lab ' + model.lab)} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9, dir=none];',
        f"  label={_dq('lab ' + model.lab)}; labelloc=t;",
    ]
    for net, subnet in model.networks.items():
        out.append(
            f'  {_id("net", net)} [shape=hexagon, style=filled, fillcolor="#dbeafe", '
            f"label={_dq(net + chr(10) + subnet)}];"
        )
    for h in model.hosts:
        color = {"running": "#dcfce7", "static": "#dcfce7", "not up": "#f3f4f6"}.get(h.state, "#fee2e2")
        out.append(
            f'  {_id("host", h.name)} [shape=box, style="rounded,filled", fillcolor="{color}", '
            f"label={_dq(chr(10).join(_host_lines(h)))}];"
        )
    for h in model.hosts:
        for net, addr in h.addresses.items():
            if net in model.networks:
                out.append(f"  {_id('host', h.name)} -> {_id('net', net)} [label={_dq(addr)}];")
    for src, to, via in model.routes:
        if to == DEFAULT:
            out.append(
                f"  {_id('net', src)} -> {_id('host', via)} [style=dotted, dir=forward, label={_dq('default route')}];"
            )
            continue
        out.append(
            f"  {_id('net', src)} -> {_id('net', to)} [style=dotted, dir=forward, label={_dq('route via ' + via)}];"
        )
    for gw, forwards in model.forwards.items():
        for f in forwards:
            target = forward_target(f, model)
            if target:
                out.append(
                    f"  {_id('host', gw)} -> {_id('host', target)} "
                    f'[style=bold, color="#b45309", dir=forward, label={_dq(forward_label(f))}];'
                )
    for ctl, slices in model.slices.items():
        out.append(f"  subgraph {_id('cluster_slices', ctl)} {{")
        out.append(f"    label={_dq('SDN slices on ' + ctl)}; style=dashed;")
        for s in slices:
            label = f"{s['id']}: {', '.join(slice_members(s))}"
            out.append(f"    {_id('slice', ctl + '_' + str(s['id']))} [shape=note, label={_dq(label)}];")
        out.append("  }")
        for s in slices:
            out.append(f"  {_id('host', ctl)} -> {_id('slice', ctl + '_' + str(s['id']))} [style=dashed];")
    out.append("}")
    return "\n".join(out) + "\n"


def to_svg(dot_text: str) -> str:
    """Render DOT with Graphviz's `dot` (Debian package graphviz)."""
    if shutil.which("dot") is None:
        raise LabError("graph: Graphviz's 'dot' is not installed. Fix: apt-get install graphviz (setup.sh does).")
    res = subprocess.run(["dot", "-Tsvg"], input=dot_text, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise LabError(f"graph: dot failed: {res.stderr.strip()}")
    svg = res.stdout
    return svg[svg.index("<svg") :] if "<svg" in svg else svg


def to_html(model: Model, svg: str) -> str:
    """One self-contained page: the hosts' table, the forwards, the slices and the inline SVG."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(h.name)}</td><td>{e(', '.join(h.groups) or '-')}</td>"
        f"<td>{e(', '.join(f'{n}={a}' for n, a in h.addresses.items()))}</td>"
        f'<td class="{e(h.state.replace(" ", "-"))}">{e(h.state)}</td></tr>'
        for h in model.hosts
    )
    forwards = "".join(f"<li>{e(gw)}: {e(forward_label(f))}</li>" for gw, fs in model.forwards.items() for f in fs)
    slices = "".join(
        f"<li>{e(ctl)}: {e(str(s['id']))} ({e(', '.join(slice_members(s)))})</li>"
        for ctl, ss in model.slices.items()
        for s in ss
    )
    source = "live state" if model.live else "topology (lab not up)"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lab {e(model.lab)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3em .6em; text-align: left; }}
.running, .static {{ color: #15803d; }} .stopped, .missing, .exited {{ color: #b91c1c; }}
svg {{ max-width: 100%; height: auto; }}
</style></head>
<body>
<h1>lab {e(model.lab)}</h1>
<p>from the {source}</p>
<h2>hosts</h2>
<table id="status"><thead><tr><th>host</th><th>groups</th><th>addresses</th><th>state</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>port forwards</h2><ul id="forwards">{forwards or "<li>none</li>"}</ul>
<h2>SDN slices</h2><ul id="slices">{slices or "<li>none</li>"}</ul>
<h2>picture</h2>
<div id="graph">{svg}</div>
</body></html>
"""


def render(model: Model, fmt: str) -> str:
    if fmt == "mermaid":
        return to_mermaid(model)
    dot = to_dot(model)
    if fmt == "dot":
        return dot
    if fmt == "svg":
        return to_svg(dot)
    if fmt == "html":
        return to_html(model, to_svg(dot))
    raise LabError(f"graph --format: unknown format {fmt!r}. Fix: use one of: {', '.join(FORMATS)}.")
