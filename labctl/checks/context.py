"""What smoke checks see of a running lab: built from the lab, its inventory variables and a runner."""

from __future__ import annotations

from labctl.checks.base import Context
from labctl.lifecycle import kernellog
from labctl.lifecycle.lab import Lab
from labctl.provisioning import inventory, inventory_vars


def context_for(lab: Lab) -> Context:
    topo = lab.topo
    groups = topo.group_hosts()
    groups["all"] = list(topo.hosts)
    ssh = lab.addresses()
    lab_vars = inventory.lab_vars(topo, lab.state)
    user = inventory_vars.load()
    hostvars = {}
    for name in topo.hosts:
        hv = dict(lab_vars)
        hv.update(inventory.user_vars(topo, lab.state, name, ssh[name], user))
        hv.update(inventory.host_vars(topo, lab.state, name, ssh[name]))
        hv.update(topo.hostvars(name))
        hostvars[name] = hv
    addresses = {name: dict(h.addresses) or {"ssh": ssh[name]} for name, h in topo.hosts.items()}
    runner = lab.runner()

    def kernel_log(host: str, needle: str) -> list[str]:
        return kernellog.lines(lab.provider_for(host), host, needle, lambda h, cmd: runner.run(h, cmd, timeout=30))

    return Context(topo.name, groups, addresses, hostvars, runner, kernel_log_reader=kernel_log)
