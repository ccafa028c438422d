"""What smoke checks see of a running lab: its resolved model (labctl.lifecycle.resolved) and a runner."""

from __future__ import annotations

from labctl.access import kernellog
from labctl.checks.base import Context
from labctl.lifecycle.model import Lab


def context_for(lab: Lab) -> Context:
    topo = lab.topo
    groups = topo.group_hosts()
    groups["all"] = list(topo.hosts)
    resolved = lab.resolved()
    hostvars = {name: dict(h.variables) for name, h in resolved.hosts.items()}
    addresses = {name: dict(h.addresses) for name, h in resolved.hosts.items()}
    runner = lab.runner()

    def kernel_log(host: str, needle: str) -> list[str]:
        return kernellog.lines(lab.provider_for(host), host, needle, lambda h, cmd: runner.run(h, cmd, timeout=30))

    return Context(topo.name, groups, addresses, hostvars, runner, kernel_log_reader=kernel_log)
