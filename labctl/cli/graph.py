"""labctl graph: draw the lab (mermaid, dot, ...), to stdout or a file."""

from __future__ import annotations

import argparse
import sys

from labctl.cli.common import SubParsers, add_verb, output_file, write_output
from labctl.cli_args import lab_args
from labctl.lifecycle import find
from labctl.lifecycle.model import Lab
from labctl.ui import graph


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "graph", cmd_graph, "draw the lab: networks, hosts, addresses, port forwards, SDN slices")
    lab_args(p)
    p.add_argument("--format", choices=graph.FORMATS, default="mermaid", help="output format (default mermaid)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


def cmd_graph(args: argparse.Namespace) -> int:
    topo, state = find.resolve(args.file, args.name)
    if topo is None:
        find.require(topo, state)  # raises: no such lab
    assert topo is not None
    if args.output:
        output_file(args.output, "graph -o")
    text = graph.render(graph.build(Lab(topo, state)), args.format)
    if args.output:
        write_output(args.output, text, "graph -o")
    else:
        sys.stdout.write(text)
    return 0
