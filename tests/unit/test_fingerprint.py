"""Fingerprints of what went into a converge, and the plan of what to run again (pure logic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from labctl.paths import ROLES_DIR, SITE_PLAYBOOK
from labctl.provisioning import fingerprint as fp

PLAYBOOK = """---
- name: Base
  hosts: all
  gather_facts: false
  roles:
    - role: base
- name: Web
  hosts: web:web_clients
  gather_facts: false
  roles:
    - role: web
"""


def project(tmp_path: Path) -> Path:
    """A playbook with its own roles/: base (every host) and web (group web), which ships ../../app."""
    book = tmp_path / "site.yml"
    book.write_text(PLAYBOOK)
    for role in ("base", "web"):
        (tmp_path / "roles" / role / "tasks").mkdir(parents=True)
        (tmp_path / "roles" / role / "tasks" / "main.yml").write_text("---\n[]\n")
        (tmp_path / "roles" / role / "templates").mkdir()
        (tmp_path / "roles" / role / "templates" / "conf.j2").write_text("x={{ x }}\n")
    (tmp_path / "roles" / "web" / "defaults").mkdir()
    (tmp_path / "roles" / "web" / "defaults" / "main.yml").write_text('web_src: "{{ role_path }}/../../app"\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print(1)\n")
    (tmp_path / "roles" / "web" / "__pycache__").mkdir()
    (tmp_path / "roles" / "web" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    return book


def inventory(group_vars: dict[str, Any] | None = None, host_x: int = 1) -> dict[str, Any]:
    return {
        "all": {
            "vars": {"labctl_lab": "t"},
            "hosts": {"a": {"ansible_host": "10.0.0.1", "x": host_x}, "b": {"ansible_host": "10.0.0.2"}, "c": {}},
            "children": {
                "web": {"hosts": {"a": None, "b": None}, "vars": group_vars or {}},
                "other": {"hosts": {"c": None}},
            },
        }
    }


IDS = {"a": "podman:1", "b": "podman:2", "c": "podman:3"}


def prints(
    book: Path, inv: dict[str, Any] | None = None, ids: dict[str, str] | None = None
) -> dict[str, fp.Fingerprint]:
    return fp.fingerprints(book, book.parent / "roles", inv or inventory(), ids or IDS)


def roundtrip(fps: dict[str, fp.Fingerprint]) -> dict[str, fp.Fingerprint | None]:
    """As stored in state.json and read back."""
    return {h: fp.Fingerprint.from_json(yaml.safe_load(yaml.safe_dump(v.to_json()))) for h, v in fps.items()}


def test_roles_follow_the_playbook_and_the_groups(tmp_path: Path) -> None:
    fps = prints(project(tmp_path))
    assert {h: list(f.roles) for h, f in fps.items()} == {"a": ["base", "web"], "b": ["base", "web"], "c": ["base"]}
    web = fps["a"].roles["web"]
    assert "templates/conf.j2" in web and "../../app/main.py" in web  # what the role ships from outside it
    assert not any("__pycache__" in f for f in web)


def test_nothing_changed_plans_nothing(tmp_path: Path) -> None:
    book = project(tmp_path)
    assert fp.plan(roundtrip(prints(book)), prints(book)) == {}


def test_a_changed_template_runs_that_role_on_its_hosts_only(tmp_path: Path) -> None:
    book = project(tmp_path)
    old = roundtrip(prints(book))
    (tmp_path / "roles" / "web" / "templates" / "conf.j2").write_text("x={{ x }} # new\n")
    todo = fp.plan(old, prints(book))
    assert {h: hp.roles for h, hp in todo.items()} == {
        "a": {"web": "changed: templates/conf.j2"},
        "b": {"web": "changed: templates/conf.j2"},
    }
    assert fp.describe(todo) == ["a: web changed: templates/conf.j2", "b: web changed: templates/conf.j2"]


def test_a_file_shipped_from_outside_the_role_counts(tmp_path: Path) -> None:
    book = project(tmp_path)
    old = roundtrip(prints(book))
    (tmp_path / "app" / "main.py").write_text("print(2)\n")
    assert fp.plan(old, prints(book))["a"].roles == {"web": "changed: ../../app/main.py"}


def test_a_group_var_runs_every_role_of_that_groups_hosts(tmp_path: Path) -> None:
    book = project(tmp_path)
    old = roundtrip(prints(book))
    todo = fp.plan(old, prints(book, inventory(group_vars={"web_port": 81})))
    assert set(todo) == {"a", "b"}
    assert todo["a"].roles == {"base": "variables changed: web_port", "web": "variables changed: web_port"}
    assert fp.describe({"a": todo["a"]}) == ["a: base, web (variables changed: web_port)"]


def test_a_host_var_runs_only_on_that_host(tmp_path: Path) -> None:
    book = project(tmp_path)
    old = roundtrip(prints(book))
    assert set(fp.plan(old, prints(book, inventory(host_x=2)))) == {"a"}


def test_a_recreated_host_runs_everything_on_it(tmp_path: Path) -> None:
    book = project(tmp_path)
    old = roundtrip(prints(book))
    todo = fp.plan(old, prints(book, ids={**IDS, "c": "podman:99"}))
    assert {h: hp.roles for h, hp in todo.items()} == {"c": {"base": "host recreated"}}


def test_a_new_host_and_a_lost_record(tmp_path: Path) -> None:
    book = project(tmp_path)
    old = roundtrip(prints(book))
    del old["b"]
    old["a"] = fp.Fingerprint.from_json(old["a"].to_json() if old["a"] else None)
    old["c"] = fp.Fingerprint.from_json({"garbage": True})  # a damaged record counts as none
    todo = fp.plan(old, prints(book))
    assert set(todo) == {"b", "c"} and todo["b"].why == "no converge recorded"


def test_playbook_change_and_added_role(tmp_path: Path) -> None:
    book = project(tmp_path)
    old = roundtrip(prints(book))
    book.write_text(PLAYBOOK.replace("web:web_clients", "web:other"))
    todo = fp.plan(old, prints(book))
    assert {h: hp.roles for h, hp in todo.items()} == {"c": {"web": "role added"}}  # a, b: same plays as before
    book.write_text(PLAYBOOK.replace("gather_facts: false", "gather_facts: true", 1))  # the play every host is in
    todo = fp.plan(old, prints(book))
    assert {h: hp.roles for h, hp in todo.items()} == {key: {"base": "changed: play 'Base'"} for key in "abc"}


def test_many_changes_are_named_briefly(tmp_path: Path) -> None:
    book = project(tmp_path)
    old = roundtrip(prints(book))
    for i in range(5):
        (tmp_path / "roles" / "base" / "templates" / f"n{i}.j2").write_text("")
    assert fp.plan(old, prints(book))["c"].roles["base"] == (
        "changed: templates/n0.j2, templates/n1.j2, templates/n2.j2 and 2 more"
    )


def test_partial_playbook_limits_each_play_to_the_hosts_that_need_it(tmp_path: Path) -> None:
    book = project(tmp_path)
    todo = {"b": fp.HostPlan({"web": "changed: x"}), "a": fp.HostPlan({"web": "changed: x"})}
    plays = yaml.safe_load(fp.partial_playbook(book, todo, ["a", "b", "c"]))
    assert [p["hosts"] for p in plays] == ["a,b"]  # the base play is left out; topology order
    assert plays[0]["roles"] == [{"role": "web"}] and plays[0]["gather_facts"] is False
    assert fp.roles_path(book, Path("/r")) == f"{tmp_path.resolve() / 'roles'}:/r"


def test_the_real_site_playbook(tmp_path: Path) -> None:
    """Every role of site.yml is found in roles/, and the default lab's groups pick the roles."""
    inv = {"all": {"hosts": {"web": {}}, "children": {"mongrel2": {"hosts": {"web": None}}}}}
    fps = fp.fingerprints(SITE_PLAYBOOK, ROLES_DIR, inv, {"web": "podman:1"})
    routes = 'play "Routes through the lab\'s gateways (after them, so every later install crosses their NAT)"'
    assert list(fps["web"].roles) == ["common", routes, "mongrel2"]
    assert "common/tasks/routes.yml" in fps["web"].roles[routes]  # the role its tasks include
    assert all(fps["web"].roles[r] for r in fps["web"].roles)
    sdn = fp.role_files(ROLES_DIR / "sdn_controller")
    assert any(f.startswith("files/controller/") for f in sdn)


def test_a_play_of_tasks_is_a_unit_of_its_own(tmp_path: Path) -> None:
    """A play with tasks (here: including a task file of role base) runs when what it includes changed,
    and a partial playbook keeps it for those hosts."""
    book = project(tmp_path)
    book.write_text(
        PLAYBOOK
        + """- name: Routes
  hosts: all
  gather_facts: false
  tasks:
    - name: Include
      ansible.builtin.include_role:
        name: base
        tasks_from: main.yml
"""
    )
    old = roundtrip(prints(book))
    assert list(old["c"].roles) == ["base", "play 'Routes'"] if old["c"] else False
    (tmp_path / "roles" / "base" / "tasks" / "main.yml").write_text("---\n[] # changed\n")
    todo = fp.plan(old, prints(book))
    assert todo["c"].roles == {"base": "changed: tasks/main.yml", "play 'Routes'": "changed: base/tasks/main.yml"}
    plays = yaml.safe_load(fp.partial_playbook(book, todo, ["a", "b", "c"]))
    assert [(p["name"], p["hosts"]) for p in plays] == [("Base", "a,b,c"), ("Routes", "a,b,c")]
