"""Converging a lab with Ansible: only what changed since the last successful converge."""

from __future__ import annotations

from pathlib import Path

from labctl import paths
from labctl.access import hostkeys
from labctl.errors import LabError
from labctl.lifecycle.model import Lab
from labctl.lifecycle.parallel import Say
from labctl.provisioning import fingerprint
from labctl.provisioning.ansible_run import PlaybookRun, Progress, run_playbook
from labctl.state import write_atomic


def refuse_changed_keys(lab: Lab, run: PlaybookRun) -> None:
    """Ansible (ssh or mitogen) found a host whose key is not the one learnt: that error, not its unreachable output."""
    hosts = sorted({f.host for f in run.failures if f.host in lab.topo.hosts and hostkeys.says_mismatch(f.msg)})
    if hosts:
        errors = [str(hostkeys.changed(lab.name, h, lab.topo.hosts[h].provider, lab.state.known_hosts)) for h in hosts]
        raise LabError("\n".join(errors))


def converge_changed(
    lab: Lab, playbook: Path, force: str, say: Say, progress: Progress
) -> tuple[PlaybookRun | None, dict[str, fingerprint.HostPlan]]:
    """Run the playbook for what changed since the last successful converge (all of it when forced);
    no ansible-playbook at all when nothing did. Records what each host converged from."""
    inv = lab.resolved().inventory  # what write_config just wrote to inventory.yml, not read back
    new = fingerprint.fingerprints(playbook, paths.ROLES_DIR, inv, lab.identities())
    todo = fingerprint.full_plan(new, force) if force else fingerprint.plan(lab.converged(), new)
    if not todo:
        say(f"converge: nothing changed since the last converge of {len(new)} host(s); ansible-playbook not run")
        return None, todo
    for line in fingerprint.describe(todo):
        say(f"converge {line}")
    book, env = playbook, {}
    if not force and (set(todo) != set(new) or any(hp.roles.keys() != new[h].roles.keys() for h, hp in todo.items())):
        book = lab.state.dir / "converge-changed.yml"
        write_atomic(book, fingerprint.partial_playbook(playbook, todo, list(lab.topo.hosts)))
        env["ANSIBLE_ROLES_PATH"] = fingerprint.roles_path(playbook, paths.ROLES_DIR)
    run = run_playbook(lab.state, book, progress=progress, env=env)
    failed = sorted({f.host for f in run.failures})
    ok = [h for h in new if h not in failed] if run.ok or failed else []
    lab.record_converged(new, ok, failed if failed or run.ok else list(todo))
    return run, todo
