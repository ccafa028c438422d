"""Tearing a lab down, and what of it is left when that stopped midway."""

from __future__ import annotations

import contextlib

from labctl.access import control_dir
from labctl.errors import Interrupted, LabError
from labctl.lifecycle.parallel import Say, quiet
from labctl.names import validate_lab_name
from labctl.providers import get_provider, provider_names, teardown_order
from labctl.state import LabState


def down(name: str, say: Say = quiet) -> list[str]:
    """Remove every host, network, key, state file and control socket directory of the lab; error if
    nothing was there.

    Every provider is asked: each finds its own resources by the lab's label, so this works from the
    name alone, whatever the state file says. Stopped midway (Ctrl-C, an error), it says what is left
    and that running it again finishes."""
    state = LabState(validate_lab_name(name, "--name"))
    with state.locked():
        removed: list[str] = []
        had_state = state.dir.exists()
        try:
            for provider_name in teardown_order():
                removed += get_provider(provider_name).destroy_lab(name)
            if control_dir.remove_control_dir(state):
                removed.append("SSH control socket directory")
            state.remove()
        except KeyboardInterrupt:
            raise Interrupted(_unfinished(name, state, "was interrupted")) from None
        except LabError as exc:
            raise LabError(_unfinished(name, state, f"stopped: {exc}")) from None
    if not removed and not had_state:
        raise LabError(
            f"no lab named {name!r}: nothing to remove (no containers, networks or state). "
            "Fix: check the name with 'labctl status --all'."
        )
    return removed


def leftovers(name: str, state: LabState) -> list[str]:
    """What of the lab is still there: hosts, networks, the control socket directory, the state."""
    left = []
    hosts: set[str] = set()
    nets: set[str] = set()
    for provider_name in provider_names():
        provider = get_provider(provider_name)
        try:
            hosts |= set(provider.list(name))
            nets |= set(provider.networks(name).get(name, {}))
        except LabError:
            left.append(f"possibly hosts and networks ({provider_name} did not answer)")
    if hosts:
        left.append(f"{len(hosts)} host(s) ({', '.join(sorted(hosts))})")
    if nets:
        left.append(f"{len(nets)} network(s) ({', '.join(sorted(nets))})")
    for provider_name in teardown_order():
        with contextlib.suppress(LabError):
            left += get_provider(provider_name).remains(name)
    if control_dir.control_path_dir(state).exists():
        left.append(f"the SSH control socket directory {control_dir.control_path_dir(state)}")
    if state.dir.exists():
        left.append(f"the state directory {state.dir}")
    return left


def _unfinished(name: str, state: LabState, how: str) -> str:
    return (
        f"'down' of lab {name!r} {how}. Left: {'; '.join(leftovers(name, state)) or 'nothing that labctl can see'}. "
        f"Fix: run 'labctl down --name {name}' again; it removes what is left."
    )
