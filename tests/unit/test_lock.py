"""The lock format (labctl.reproduce.lockfile): round trip, schema, damaged files, the diff; and the pieces of
save/restore that are pure logic (the archive's manifest, the pins template, the venv finder)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from labctl import cli
from labctl.errors import LabError
from labctl.hostside import hostinfo
from labctl.providers import Provider
from labctl.reproduce import archive, locked, lockfile

ROLES = Path(__file__).resolve().parents[2] / "roles"


def sample() -> lockfile.Lock:
    return lockfile.Lock(
        lab="rp",
        topology_sha256="a" * 64,
        image={"tag": "localhost/labctl/debian:bookworm-1", "recipe_hash": "1", "id": "sha"},
        project={"version": "0.1.0", "commit": "c0ffee", "dirty": False},
        hosts={
            "db": lockfile.HostLock(
                debian={"memcached": "1.6.18-1", "bsdutils": "1:2.38.1-5+deb12u3", "tzdata": "2026b-0+deb12u1"},
                python={"system": {"pymemcache": "3.5.2"}, "/opt/app/venv": {"requests": "2.31.0"}},
                origins={"memcached": "deb.debian.org oldstable/main"},
                sources=["deb http://deb.debian.org/debian bookworm main"],
                roles={"memcached": "apt"},
            )
        },
        created="2026-11-26T00:00:00Z",
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "rp.lock"
    path.write_text(sample().dumps())
    back = lockfile.read(path)
    assert back.to_dict() == sample().to_dict()
    # versions that YAML would read as numbers or with a colon stay strings
    assert back.hosts["db"].debian["bsdutils"] == "1:2.38.1-5+deb12u3"
    assert path.read_text().startswith("# labctl lock")


def test_lock_sits_beside_the_topology() -> None:
    assert lockfile.lock_path(Path("/x/labs/web.yml")) == Path("/x/labs/web.lock")


def test_newer_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    data = sample().to_dict()
    data["schema"] = lockfile.SCHEMA + 1
    path = tmp_path / "rp.lock"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(LabError, match=r"lock schema 2 is newer than this labctl reads \(schema 1\).*Fix: upgrade"):
        lockfile.read(path)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d.pop("schema"), "schema is None, expected 1"),
        (lambda d: d.update(schema="one"), "schema is 'one', expected 1"),
        (lambda d: d.pop("hosts"), "'hosts' is missing or empty"),
        (lambda d: d.update(hosts=[]), "'hosts' is missing or empty"),
        (lambda d: d["hosts"]["db"].update(debian={"tzdata": 2026.1}), "hosts.db.debian.tzdata must be a version"),
        (lambda d: d["hosts"]["db"].update(debian=["tzdata"]), "hosts.db.debian must be a mapping"),
        (lambda d: d["hosts"]["db"].update(python=["x"]), "hosts.db.python must map environments"),
        (lambda d: d.pop("topology_sha256"), "'topology_sha256' is missing"),
    ],
)
def test_damaged_lock_is_one_clear_error(tmp_path: Path, mutate, problem: str) -> None:  # type: ignore[no-untyped-def]
    data = sample().to_dict()
    mutate(data)
    path = tmp_path / "rp.lock"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(LabError) as err:
        lockfile.read(path)
    assert problem in str(err.value)
    assert "the lock file is damaged" in str(err.value) and "Fix: " in str(err.value)


@pytest.mark.parametrize("text", ["{not yaml: [", "- a list\n", "", "\x00\x01"])
def test_lock_that_is_no_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rp.lock"
    path.write_text(text)
    with pytest.raises(LabError, match="the lock file is damaged"):
        lockfile.read(path)


def test_missing_lock_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"no lock file\. Fix: write one from the running lab: labctl lock -f"):
        lockfile.read(tmp_path / "rp.lock")


def test_diff_names_host_package_locked_and_running() -> None:
    locked = sample()
    running = {
        "db": lockfile.HostLock(
            debian={"memcached": "1.6.18-1", "bsdutils": "1:2.38.1-5+deb12u3", "tzdata": "2025b-0+deb12u1", "vim": "2"},
            python={"system": {"pymemcache": "3.5.2"}, "/opt/app/venv": {}},
        ),
        "web": lockfile.HostLock(),
    }
    drift = lockfile.diff(locked, running, "b" * 64)
    lines = [d.line() for d in drift]
    assert lines == [
        "-: topology sha256: aaaaaaaaaaaa → bbbbbbbbbbbb",
        "db: debian tzdata: 2026b-0+deb12u1 → 2025b-0+deb12u1",
        "db: debian vim: absent → 2",
        "db: python:/opt/app/venv requests: 2.31.0 → absent",
        "web: host web: absent → running",
    ]
    assert lockfile.diff(locked, {"db": locked.hosts["db"]}, locked.topology_sha256) == []
    assert [d.line() for d in lockfile.diff(locked, {})] == ["db: host db: locked → absent"]


def test_topology_hash_ignores_the_lab_name() -> None:
    raw = {"name": "a", "hosts": [{"name": "h"}]}
    assert lockfile.topology_hash(raw) == lockfile.topology_hash({**raw, "name": "b"})
    assert lockfile.topology_hash(raw) != lockfile.topology_hash({**raw, "hosts": []})


def test_pins_for_common() -> None:
    pins = sample().pins("db")
    assert pins["common_apt_pins"]["tzdata"] == "2026b-0+deb12u1"
    assert pins["common_python_pins"] == {"pymemcache": "3.5.2", "requests": "2.31.0"}
    assert pins["common_python_env_pins"] == sample().hosts["db"].python  # per environment, for pip_sync.py
    # a distribution at two versions in two environments gets no single constraint
    assert lockfile.python_pins({"system": {"six": "1"}, "/v": {"six": "2", "idna": "3"}}) == {"idna": "3"}


def test_pins_template_pins_every_version_at_1001() -> None:
    loader = jinja2.FileSystemLoader(ROLES / "common" / "templates")
    env = jinja2.Environment(loader=loader, keep_trailing_newline=True, trim_blocks=True)  # as Ansible's template
    env.filters["dictsort"] = lambda d: sorted(d.items())
    text = env.get_template("etc/apt/preferences.d/labctl-lock.pref.j2").render(
        ansible_managed="managed", common_apt_pins={"tzdata": "2026b-0+deb12u1", "bsdutils": "1:2.38"}
    )
    stanzas = [s.strip() for s in text.split("\n\n")[1:]]
    assert stanzas == [
        "Package: bsdutils\nPin: version 1:2.38\nPin-Priority: 1001",
        "Package: tzdata\nPin: version 2026b-0+deb12u1\nPin-Priority: 1001",
    ]


def test_hostinfo_finds_venvs_under_its_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for venv in ("opt/app/venv", "opt/x/y/z", "srv/deep/a/b/c/d/e"):
        (tmp_path / venv).mkdir(parents=True)
        (tmp_path / venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    monkeypatch.setattr(hostinfo, "VENV_ROOTS", (str(tmp_path / "opt"), str(tmp_path / "srv")))
    assert hostinfo.venvs() == [str(tmp_path / "opt/app/venv"), str(tmp_path / "opt/x/y/z")]


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ({"x": b""}, "no manifest.yml"),
        ({"manifest.yml": b"[1, 2"}, "manifest.yml is not YAML"),
        ({"manifest.yml": b"kind: other\n"}, "not a labctl manifest"),
        ({"manifest.yml": b"kind: labctl-saved-lab\nschema: 9\nhosts: {}\n"}, "archive schema 9"),
        ({"manifest.yml": b"kind: labctl-saved-lab\nschema: 1\n"}, "lists no hosts"),
    ],
)
def test_restore_refuses_what_is_no_saved_lab(
    tmp_path: Path, members: dict[str, bytes], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))  # the archive is staged inside the state root
    path = _tar(tmp_path / "lab.tar", members)
    with pytest.raises(LabError) as err:
        archive.restore(path, "rp-x")
    assert problem in str(err.value) and "Fix: name an archive written by 'labctl save" in str(err.value)


def test_restore_refuses_a_file_that_is_no_tar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "lab.tar"
    path.write_text("hello")
    with pytest.raises(LabError, match="cannot be opened as tar"):
        archive.restore(path)


def test_up_from_takes_no_topology_or_lock(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["up", "--from", "lab.tar", "--locked"]) == 2
    assert "-f and --locked do not go with it" in capsys.readouterr().err


def test_a_locked_lab_gives_each_host_its_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """up --locked keeps the lock in the lab's state; every converge (provision too) then pins its versions,
    over any value the topology sets; an unlocked lab gets none."""
    from labctl.lifecycle.model import Lab
    from labctl.provisioning import inventory
    from labctl.state import LabState
    from labctl.topology import parse

    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    raw = {
        "name": "rp",
        "vars": {"common_apt_pins": {"tzdata": "0"}},
        "networks": [{"name": "lab", "subnet": "198.19.100.0/24"}],
        "hosts": [{"name": h, "groups": [], "networks": ["lab"]} for h in ("db", "web")],
    }
    topo = parse(raw, tmp_path / "rp.yml")
    state = LabState("rp")
    state.ensure_dir()
    lab = Lab(topo, state)
    (state.dir / "lab.lock").write_text(sample().dumps())

    def host_vars() -> dict[str, dict[str, object]]:
        return yaml.safe_load(inventory.render(topo, state, lab.addresses(), None, lab.labctl_vars()))["all"]["hosts"]

    assert "common_apt_pins" not in host_vars()["db"]  # not locked: no pins
    lab.extra["locked"] = True
    db = host_vars()["db"]
    assert db["common_apt_pins"]["tzdata"] == "2026b-0+deb12u1"
    assert db["common_python_pins"]["pymemcache"] == "3.5.2"
    assert "common_apt_pins" not in host_vars()["web"]  # a host the lock does not know
    lab.save("up")
    assert Lab(topo, state).pins()["db"]["common_apt_pins"]["memcached"] == "1.6.18-1"  # kept in state.json
    assert "labctl_apt_refresh" not in host_vars()["web"]  # roles refresh old apt lists
    lab.extra["restored"] = {"archive": "lab.tar"}  # a restored lab keeps the lists it was saved with
    assert host_vars()["web"]["labctl_apt_refresh"] is False and host_vars()["db"]["labctl_apt_refresh"] is False


class _FakeProvider(Provider):
    """Stands in for podman in save's unit test: records what it was asked, writes one file."""

    def __init__(self) -> None:
        self.secrets: bool | None = None

    def address(self, spec: object) -> str:
        return "198.19.100.10"

    def export_hosts(
        self, lab: str, hosts: list[str], dest: Path, secrets: bool = False, runner: object = None
    ) -> dict[str, str]:
        self.secrets = secrets
        self.runner = runner
        (dest / "fake.tar").write_text("layers")
        return {h: f"fake.tar#{lab}-{h}" for h in hosts}

    # the provider base class's defaults (what a provider without these capabilities does)
    def host_keys(self, lab: str, host: str) -> dict[str, str]:
        return {}  # reads no key: the host is trusted on first use

    def package_proxies(self, specs: list[Any]) -> dict[str, str]:
        return {}

    def key_at_create(self, spec: object) -> bool:
        return False


def _saveable_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: bool
) -> tuple[Any, _FakeProvider, dict[str, Any]]:
    """A one-host lab "rp" on a fake provider, with a key, a secrets directory and (secret) one generated
    secret in its state: (lab, provider, raw topology)."""
    from labctl.lifecycle.model import Lab
    from labctl.state import LabState
    from labctl.topology import parse

    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    raw: dict[str, Any] = {"name": "rp", "networks": [{"name": "lab", "subnet": "198.19.100.0/24"}],
                           "hosts": [{"name": "db", "groups": [], "networks": ["lab"]}]}  # fmt: skip
    state = LabState("rp")
    state.ensure_keypair()
    (state.dir / "secrets").mkdir()
    if secret:
        (state.dir / "secrets" / "mongodb_admin").write_text("s3cret")
    lab = Lab(parse(raw, tmp_path / "rp.yml"), state)
    fake = _FakeProvider()
    monkeypatch.setattr(lab, "backend", lambda _name: fake)
    return lab, fake, raw


@pytest.mark.parametrize("with_secrets", [False, True])
def test_save_keeps_secrets_out_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_secrets: bool
) -> None:

    # a lab without secrets is saved without --with-secrets
    lab, fake, raw = _saveable_lab(tmp_path, monkeypatch, secret=with_secrets)
    monkeypatch.setattr(locked, "collect", lambda _lab: sample())
    monkeypatch.setattr(locked, "topology_raw", lambda _lab: dict(raw))

    report = archive.save(lab, tmp_path / "lab.tar", with_secrets=with_secrets)
    assert fake.secrets is with_secrets
    assert report.path.stat().st_mode & 0o777 == (0o600 if with_secrets else 0o644)
    with tarfile.open(report.path) as tar:
        names = tar.getnames()
        manifest = yaml.safe_load(tar.extractfile("manifest.yml").read())  # type: ignore[union-attr]
        assert lockfile.parse(tar.extractfile("lab.lock").read().decode(), Path("x")).to_dict() == sample().to_dict()  # type: ignore[union-attr]
    assert not [n for n in names if "id_ed25519" in n]  # the lab's key never
    assert ("secrets/mongodb_admin" in names) is with_secrets
    assert manifest["secrets"] is with_secrets
    assert manifest["hosts"] == {"db": {"provider": "podman", "kind": "container", "file": "fake.tar#rp-db"}}
    assert fake.runner is not None  # the lab's SSH runner is offered to every provider
    assert ("warning" in manifest) is with_secrets


def test_save_of_a_lab_with_generated_secrets_needs_with_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MongoDB's users live in the saved hosts' data and log in with the state's passwords: a restore with
    new ones could not converge, so save refuses to leave them out, naming the flag, before it reads a host."""
    lab, fake, _raw = _saveable_lab(tmp_path, monkeypatch, secret=True)
    with pytest.raises(LabError, match=r"holds generated secrets \(mongodb_admin\).*--with-secrets") as err:
        archive.save(lab, tmp_path / "lab.tar")
    assert "s3cret" not in str(err.value)
    assert fake.secrets is None and not (tmp_path / "lab.tar").exists()  # nothing was read or written
