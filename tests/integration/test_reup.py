"""A re-`up` converges only what changed since the last successful converge (one shared lab, real
podman, real ansible-playbook): a template, a group variable, a recreated host, nothing at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labctl import paths, procs
from labctl.lifecycle import down as lifecycle_down
from labctl.lifecycle import up as lifecycle_up
from labctl.lifecycle.model import Lab as LabModel
from labctl.topology import load

NAME = "it-reup"
SUBNET = "198.18.163.0/24"
BOOK = """---
- name: Base on every host
  hosts: all
  gather_facts: false
  roles:
    - role: fp_base
- name: Web
  hosts: web
  gather_facts: false
  roles:
    - role: fp_web
"""
TASK = """---
- name: Write the config
  ansible.builtin.template:
    src: {name}.conf.j2
    dest: /etc/{name}.conf
    mode: "0644"
- name: Fail when the host says so
  ansible.builtin.command: test ! -e /tmp/fp_fail
  changed_when: false
"""


def topology(path: Path, web_vars: str = "{}") -> None:
    path.write_text(
        f"---\nschema: 1\nname: {NAME}\nnetworks: [{{name: lab, subnet: {SUBNET}}}]\n"
        f"groups: {{web: {web_vars}, other: {{}}}}\n"
        "hosts:\n"
        "  - {name: h1, groups: [web], networks: [lab]}\n"
        "  - {name: h2, groups: [web], networks: [lab]}\n"
        "  - {name: h3, groups: [other], networks: [lab]}\n"
    )


def project(tmp_path: Path) -> Path:
    book = tmp_path / "site.yml"
    book.write_text(BOOK)
    for role in ("fp_base", "fp_web"):
        base = tmp_path / "roles" / role
        (base / "tasks").mkdir(parents=True)
        (base / "templates").mkdir()
        (base / "tasks" / "main.yml").write_text(TASK.format(name=role))
        (base / "templates" / f"{role}.conf.j2").write_text(f"{role} {{{{ inventory_hostname }}}} v1\n")
    return book


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every process labctl starts through procs.popen (ansible-playbook is one)."""
    calls: list[list[str]] = []
    real = procs.popen

    def spy(cmd: list[str], **kwargs: Any) -> Any:
        calls.append(list(cmd))
        return real(cmd, **kwargs)

    monkeypatch.setattr(procs, "popen", spy)
    return calls


def test_reup_converges_only_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spawned: list[list[str]]
) -> None:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    book, lab_file = project(tmp_path), tmp_path / "lab.yml"
    topology(lab_file)
    said: list[str] = []

    def up(force: str = "") -> tuple[lifecycle_up.UpReport, set[tuple[str, str]]]:
        """One `up`; the (host, role) pairs that ran a task, as Ansible's events tell."""
        ran: set[tuple[str, str]] = set()

        def progress(event: dict[str, Any]) -> None:
            if event["event"] == "result" and " : " in event["task"]:
                ran.add((event["host"], event["task"].split(" : ")[0]))

        said.clear()
        lab = LabModel(load(lab_file, paths.known_groups()))
        report = lifecycle_up.up(lab, say=said.append, playbook=book, progress=progress, force=force)
        return report, ran

    def sh(host: str, command: str) -> str:
        conn = LabModel(load(lab_file, paths.known_groups())).runner()
        try:
            return conn.run(host, command, timeout=30).stdout.strip()
        finally:
            conn.close()

    everything = {("h1", "fp_base"), ("h2", "fp_base"), ("h3", "fp_base"), ("h1", "fp_web"), ("h2", "fp_web")}
    try:
        report, ran = up()
        assert report.converge is not None and report.converge.ok and ran == everything

        spawned.clear()
        report, ran = up()  # nothing changed: no ansible-playbook at all
        assert report.converge is None and report.todo == {} and spawned == [] and ran == set()
        assert any("nothing changed" in s and "ansible-playbook not run" in s for s in said), said

        template = tmp_path / "roles" / "fp_web" / "templates" / "fp_web.conf.j2"
        template.write_text("fp_web {{ inventory_hostname }} v2\n")
        report, ran = up()
        assert ran == {("h1", "fp_web"), ("h2", "fp_web")}
        assert "converge h1: fp_web changed: templates/fp_web.conf.j2" in said, said
        assert sh("h2", "cat /etc/fp_web.conf") == "fp_web h2 v2"

        topology(lab_file, web_vars="{fp_color: green}")  # a group variable of `web`
        report, ran = up()
        assert ran == {("h1", "fp_base"), ("h2", "fp_base"), ("h1", "fp_web"), ("h2", "fp_web")}
        assert "converge h1: fp_base, fp_web (variables changed: fp_color)" in said, said

        lab = LabModel(load(lab_file, paths.known_groups()))
        lab.provider_for("h1").destroy(NAME, "h1")  # recreated by the next up: a new host
        report, ran = up()
        assert report.created == ["h1"] and ran == {("h1", "fp_base"), ("h1", "fp_web")}
        assert sh("h1", "cat /etc/fp_web.conf") == "fp_web h1 v2"

        sh("h2", "touch /tmp/fp_fail")
        template.write_text("fp_web {{ inventory_hostname }} v3\n")
        report, ran = up()  # h2 fails: it is not recorded as converged, so the next up runs it again
        assert report.converge is not None and not report.converge.ok
        assert {f.host for f in report.converge.failures} == {"h2"}
        sh("h2", "rm /tmp/fp_fail")
        report, ran = up()
        assert ran == {("h2", "fp_base"), ("h2", "fp_web")} and report.converge is not None and report.converge.ok
        assert "converge h2: fp_base, fp_web (no converge recorded)" in said, said

        spawned.clear()
        report, ran = up(force="provision")  # provision (and up --force) run everything
        assert ran == everything and len(spawned) == 1
    finally:
        lifecycle_down.down(NAME)
