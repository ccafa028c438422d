"""`labctl status --host` on a NAT gateway: the port forwards in force (read from its iptables rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from labctl.errors import LabError
from labctl.ui.views import out

from .iptables import forwards_from_rules

if TYPE_CHECKING:
    from labctl.lifecycle.model import Lab


def details(lab: Lab, host: str) -> dict[str, Any]:
    """The port forwards in force on the gateway ``host``."""
    conn = lab.runner()
    try:
        rules = conn.run(host, "iptables -w 5 -t nat -S", timeout=30)
    finally:
        conn.close()
    if not rules.ok:
        raise LabError(
            f"cannot read the NAT rules on {host!r}: {rules.output}. "
            f"Fix: check 'labctl exec {host} -- iptables -t nat -S'."
        )
    return {"forwards": forwards_from_rules(rules.stdout)}


def show(host: str, details: dict[str, Any]) -> None:
    """The forwards as a table (nothing when there is none)."""
    if details.get("forwards"):
        forwards_table(host, details["forwards"])


def forwards_table(host: str, forwards: list[dict[str, Any]]) -> None:
    table = Table(title=f"port forwards on {host}", title_justify="left")
    for col in ("name", "protocol", "listen", "to"):
        table.add_column(col)
    for f in forwards:
        to = f"{f.get('to_host') or f.get('to_address')}:{f['to_port']}"
        listen = f"{f.get('address') or '*'}:{f['port']}"
        table.add_row(escape(str(f["name"])), escape(str(f["protocol"])), escape(listen), escape(to))
    out.print(table)
