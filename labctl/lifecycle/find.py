"""Finding the lab a command acts on: from a topology file, from its name (its state), or the default lab."""

from __future__ import annotations

from pathlib import Path

from labctl import paths
from labctl.errors import LabError
from labctl.lifecycle.model import Lab
from labctl.names import validate_lab_name
from labctl.state import LabState
from labctl.topology import Topology, load, parse


def resolve(file: str | None, name: str | None) -> tuple[Topology | None, LabState]:
    """The lab a command acts on: -f FILE, else --name NAME (from its state), else the default lab."""
    if name is not None:
        validate_lab_name(name, "--name")
    if file is not None or name is None:
        topo = load(file or paths.DEFAULT_LAB, paths.known_groups())
        if name is not None:
            topo.name = name
        return topo, LabState(topo.name)
    state = LabState(name)
    data = state.read()
    if not data:
        return None, state
    return parse(data["topology"], Path(data["topology_file"]), paths.known_groups()), state


def require(topo: Topology | None, state: LabState) -> Lab:
    """The running lab a command acts on; one clear error when it is not up."""
    if topo is None or not state.exists():
        raise LabError(
            f"no lab named {state.name!r} is up. Fix: start it with 'labctl up -f LAB.yml', "
            "or name a running lab (see 'labctl status --all')."
        )
    return Lab(topo, state)
