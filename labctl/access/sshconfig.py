"""An OpenSSH client configuration for a lab's hosts (as `vagrant ssh-config`): pure rendering.

The same text is what `labctl ssh-config` prints and what exec, ssh, cp and logs hand to the system
ssh/scp with ``-F``: one ``Host`` block per lab host, the lab's key only, its own known_hosts file, checked
strictly (labctl learns every host's key when it makes the host: labctl.access.hostkeys)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.state import write_atomic

if TYPE_CHECKING:
    from labctl.lifecycle.model import Lab


@dataclass(frozen=True)
class SshHost:
    name: str
    address: str
    user: str
    key: str
    port: int = 22


def _quote(value: str) -> str:
    """ssh_config values with spaces must be double-quoted."""
    return f'"{value}"' if any(c.isspace() for c in value) else value


def render(hosts: Iterable[SshHost], known_hosts: str) -> str:
    blocks = []
    for h in hosts:
        lines = [
            f"Host {h.name}",
            f"  HostName {h.address}",
            f"  User {h.user}",
            f"  Port {h.port}",
            f"  IdentityFile {_quote(h.key)}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {_quote(known_hosts)}",
            "  StrictHostKeyChecking yes",
            "  GlobalKnownHostsFile /dev/null",
            "  LogLevel ERROR",
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def lab_hosts(lab: Lab) -> list[SshHost]:
    """The lab's hosts as ssh sees them: each host's Connection (labctl.access.connection)."""
    return [SshHost(name, c.address, c.user, c.key) for name, c in lab.connections().items()]


def lab_config(lab: Lab) -> str:
    return render(lab_hosts(lab), str(lab.state.known_hosts))


def lab_config_file(lab: Lab) -> Path:
    """Write the lab's ssh config into its state directory (for ssh/scp -F) and return its path."""
    lab.ensure_host_keys()
    path = lab.state.dir / "ssh_config"
    write_atomic(path, lab_config(lab), 0o600)
    return path
