"""`labctl up --from ARCHIVE` treats the archive as data (issue 21, items 1-6): a corpus of crafted archives,
built here, each refused before anything is made.

The real `labctl up --from` CLI runs as a subprocess with a fake `podman`, `ip` and `iptables` first on PATH
(they record every call and never touch the machine) and a scratch LABCTL_STATE_DIR. Each refusal: exit 2,
one paragraph naming the archive member or field and the fix, no traceback, and no recorded podman call
that creates, loads, tags or removes anything. VM disks are real qcow2/raw files made by qemu-img."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl.errors import LabError
from labctl.providers.podman import provider as podman_provider
from labctl.providers.qemu import vmsave
from labctl.reproduce import archive, archive_checks

LABCTL = str(Path(sys.executable).parent / "labctl")
needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) not installed")

FAKE_PODMAN = r"""#!PYTHON
import json, os, sys, tarfile
world_path = os.environ["FAKE_WORLD"]
world = json.load(open(world_path))
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["podman", *args]) + "\n")
fail = os.environ.get("FAKE_FAIL", "")
if fail and " ".join(args).startswith(fail):
    sys.stderr.write("Error: fake failure of " + fail + "\n")
    sys.exit(125)
def label_filter():
    for i, a in enumerate(args):
        if a == "--filter":
            return args[i + 1].split("=", 1)[1]
    return None
def matches(c, flt):
    if flt is None:
        return True
    key, _, value = flt.partition("=")
    return key in c["Labels"] and (not value or c["Labels"][key] == value)
code = 0
if args[:1] == ["ps"]:
    found = [c for c in world["containers"] if matches(c, label_filter())]
    print("\n".join(c["Id"] for c in found) if "-q" in args else json.dumps(found))
elif args[:2] == ["network", "ls"]:
    print(json.dumps(world["networks"]))
elif args[:2] == ["image", "exists"]:
    code = 0 if args[2] in world["images"] else 1
elif args[:1] == ["images"]:
    print("\n".join(world["images"]))
elif args[:1] == ["load"]:
    with tarfile.open(args[args.index("-i") + 1]) as tar:
        names = [n for i in json.load(tar.extractfile("manifest.json")) for n in i["RepoTags"]]
    world["images"] += names
    print("\n".join("Loaded image: " + n for n in names))
elif args[:1] == ["tag"]:
    world["images"].append(args[2])
elif args[:1] in (["untag"], ["rmi"]):
    world["images"] = [i for i in world["images"] if i not in args[1:]]
elif args[:1] == ["rm"]:
    world["containers"] = [c for c in world["containers"] if c["Id"] not in args[1:]]
json.dump(world, open(world_path, "w"))
sys.exit(code)
"""

FAKE_TOOL = r"""#!/bin/sh
echo "[\"$(basename "$0")\", \"$*\"]" >> "$FAKE_LOG"
exit 0
"""

# podman verbs that make, load, name or remove something: none may run before a refusal
MUTATING = {"load", "tag", "untag", "rmi", "rm", "run", "create", "commit", "import", "pull", "network create"}

SRC = "ta-src"
SUBNET = "198.18.200.0/24"
SAVED = f"localhost/labctl-saved/{SRC}_h1:latest"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[dict[str, str]]:
    """PATH with fake podman/ip/iptables, a scratch state root and runtime dir, and an empty world."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "podman").write_text(FAKE_PODMAN.replace("PYTHON", sys.executable))
    for tool in ("ip", "iptables", "qemu-system-x86_64"):
        (bin_dir / tool).write_text(FAKE_TOOL)
    for tool in ("podman", "ip", "iptables", "qemu-system-x86_64"):
        (bin_dir / tool).chmod(0o755)
    (tmp_path / "world.json").write_text(json.dumps({"containers": [], "networks": [], "images": []}))
    (tmp_path / "calls.log").write_text("")
    run_root = Path(f"/tmp/lc-ta-{os.getpid()}-{time.monotonic_ns()}")
    run_root.mkdir()
    env = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        LABCTL_STATE_DIR=str(tmp_path / "state"),
        LABCTL_RUNTIME_DIR=str(run_root),
        LABCTL_PKGCACHE="0",
        FAKE_WORLD=str(tmp_path / "world.json"),
        FAKE_LOG=str(tmp_path / "calls.log"),
        COLUMNS="400",
    )
    yield env
    shutil.rmtree(run_root, ignore_errors=True)


def calls(env: dict[str, str]) -> list[list[str]]:
    return [json.loads(line) for line in Path(env["FAKE_LOG"]).read_text().splitlines()]


def mutating(env: dict[str, str]) -> list[list[str]]:
    out = []
    for call in calls(env):
        if call[0] != "podman":
            out += [call] if call[0] == "iptables" and ("-A" in call[1] or "-D" in call[1]) else []
            continue
        if call[1] in MUTATING or " ".join(call[1:3]) in MUTATING:
            out.append(call)
    return out


def world(env: dict[str, str]) -> dict[str, Any]:
    return json.loads(Path(env["FAKE_WORLD"]).read_text())  # type: ignore[no-any-return]


def flat(text: str) -> str:
    return " ".join(text.split())


# ---- building archives -------------------------------------------------------------------------------------


def topology(**change: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "schema": 1,
        "name": SRC,
        "provider": "podman",
        "networks": [{"name": "lab", "subnet": SUBNET}],
        "hosts": [{"name": "h1", "groups": ["memcached"], "networks": ["lab"]}],
    }
    raw.update(change)
    return raw


def manifest(hosts: dict[str, Any] | None = None, **change: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": archive.KIND,
        "schema": archive.SCHEMA,
        "lab": SRC,
        "created": "2026-12-04T00:00:00Z",
        "locked": True,
        "secrets": False,
        "hosts": hosts
        if hosts is not None
        else {"h1": archive.manifest_entry("podman", "container", f"podman-hosts.tar#{SAVED}")},
    }
    data.update(change)
    return data


def image_archive(tags: list[str], extra: dict[str, bytes] | None = None) -> bytes:
    """A docker-archive as podman save writes it: manifest.json naming the images (no real layers needed)."""
    members = {"manifest.json": json.dumps([{"Config": "c.json", "RepoTags": tags, "Layers": []}]).encode()}
    members.update(extra or {})
    return tar_bytes(members)


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def members_of(
    topo: Any = None, man: Any = None, hosts: dict[str, bytes] | None = None, lock: bytes | None = b"{}\n"
) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    out["manifest.yml"] = man if isinstance(man, bytes) else yaml.safe_dump(man or manifest()).encode()
    if topo is not False:
        out["topology.yml"] = topo if isinstance(topo, bytes) else yaml.safe_dump(topo or topology()).encode()
    if lock is not None:
        out["lab.lock"] = lock
    for name, data in (hosts if hosts is not None else {"podman-hosts.tar": image_archive([SAVED])}).items():
        out[f"hosts/{name}"] = data
    return out


def write_archive(path: Path, members: dict[str, bytes], special: list[tarfile.TarInfo] = ()) -> Path:  # type: ignore[assignment]
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for info in special:
            tar.addfile(info)
    return path


def up_from(env: dict[str, str], path: Path, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LABCTL, "up", "--from", str(path), "--name", "ta-new", *extra],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def assert_refused(env: dict[str, str], result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """exit 2, one paragraph with the needles and a Fix:, no traceback, nothing made, no state left."""
    err = flat(result.stderr)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in err, (needle, err)
    assert "Fix:" in err, err
    assert mutating(env) == [], mutating(env)
    state = Path(env["LABCTL_STATE_DIR"])
    assert not state.exists() or [p.name for p in state.iterdir()] == [], list(state.iterdir())
    return err


# ---- item 1: the archive's topology is data --------------------------------------------------------------


def test_the_real_attack_neither_runs(fake: dict[str, str], tmp_path: Path) -> None:
    """A host var ansible_connection: local, and a lookup('pipe', 'touch X') value: neither runs (the old code
    restored them as the lab's inventory and converged: the command ran here as root)."""
    proof = tmp_path / "pwned"
    topo = topology(
        vars={"motd": "{{ lookup('pipe', 'touch " + str(proof) + "') }}"},
        hosts=[{"name": "h1", "groups": ["memcached"], "networks": ["lab"], "vars": {"ansible_connection": "local"}}],
    )
    path = write_archive(tmp_path / "evil.tar", members_of(topo))
    err = assert_refused(
        fake, up_from(fake, path), "member 'topology.yml'", "vars.motd", "template expression", "--trust"
    )
    assert not proof.exists()
    topo["vars"] = {}
    path = write_archive(tmp_path / "evil2.tar", members_of(topo))
    err = assert_refused(fake, up_from(fake, path), "member 'topology.yml'", "hosts[0].vars.ansible_connection")
    assert "ansible_connection" in err and "--trust" in err and not proof.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"vars": {"ansible_python_interpreter": "/tmp/x"}}, "vars.ansible_python_interpreter"),
        ({"groups": {"memcached": {"ansible_become_exe": "/tmp/x"}}}, "groups.memcached.ansible_become_exe"),
        ({"vars": {"labctl_apt_refresh": True}}, "vars.labctl_apt_refresh"),
        ({"vars": {"{{ k }}": 1}}, "vars.{{ k }}"),
        ({"vars": {"deep": [{"a": 1}, {"b": ["x", "{% if 1 %}y{% endif %}"]}]}}, "vars.deep[1].b[1]"),
        ({"vars": {"c": "{# hidden #}"}}, "vars.c"),
        ({"checks": [{"name": "c", "group": "memcached", "command": "echo {{ x }}"}]}, "checks[0].command"),
        (
            {"vars": {"nested": {"ansible_ssh_common_args": "-o ProxyCommand=id"}}},
            "vars.nested.ansible_ssh_common_args",
        ),
    ],
)
def test_connection_variables_and_templates_are_refused(
    fake: dict[str, str], tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    path = write_archive(tmp_path / "a.tar", members_of(topology(**change)))
    assert_refused(fake, up_from(fake, path), "member 'topology.yml'", f"field '{field}'", "--trust")


def test_trust_lets_the_archives_own_variables_through(fake: dict[str, str], tmp_path: Path) -> None:
    """--trust (an archive the user wrote): the checks of archive_checks are skipped, the size bounds stay."""
    raw = topology(hosts=[{"name": "h1", "networks": ["lab"], "vars": {"ansible_user": "root", "x": "{{ 1 }}"}}])
    with pytest.raises(LabError, match="ansible_user"):
        archive_checks.check(raw, "a.tar")
    archive_checks.check(raw, "a.tar", trust=True)
    bomb: Any = ["x"]
    for _ in range(30):
        bomb = [bomb, bomb]
    with pytest.raises(LabError, match=r"more than .* values"):
        archive_checks.check({"vars": {"b": bomb}}, "a.tar", trust=True)
    result = subprocess.run([LABCTL, "up", "--trust"], env=fake, capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "only goes with --from" in flat(result.stderr)
    assert "--trust" in subprocess.run([LABCTL, "up", "--help"], env=fake, capture_output=True, text=True).stdout


# ---- item 2: providers come from the topology ---------------------------------------------------------------


def test_a_manifest_provider_that_differs_from_the_topology_is_refused(fake: dict[str, str], tmp_path: Path) -> None:
    man = manifest({"h1": archive.manifest_entry("qemu", "vm", "vm-h1")})
    path = write_archive(tmp_path / "a.tar", members_of(man=man))
    assert_refused(fake, up_from(fake, path), "hosts.h1.provider", "'qemu'", "'podman'")


def test_static_hosts_are_refused_whatever_the_manifest_says(fake: dict[str, str], tmp_path: Path) -> None:
    """The issue's spoof: a static host the manifest marks podman (the old code logged into its address)."""
    topo = topology(
        hosts=[
            {"name": "h1", "groups": ["memcached"], "networks": ["lab"]},
            {"name": "far", "provider": "static", "address": "192.0.2.7", "groups": ["memcached"]},
        ]
    )
    entry = archive.manifest_entry("podman", "container", f"podman-hosts.tar#{SAVED}")
    far = archive.manifest_entry("podman", "container", f"podman-hosts.tar#localhost/labctl-saved/{SRC}_far:latest")
    path = write_archive(tmp_path / "a.tar", members_of(topo, manifest({"h1": entry, "far": far})))
    assert_refused(fake, up_from(fake, path), "member 'topology.yml'", "static host(s) far")


def test_manifest_hosts_the_topology_lacks_are_refused(fake: dict[str, str], tmp_path: Path) -> None:
    entry = archive.manifest_entry("podman", "container", f"podman-hosts.tar#{SAVED}")
    path = write_archive(tmp_path / "a.tar", members_of(man=manifest({"h1": entry, "ghost": entry})))
    assert_refused(fake, up_from(fake, path), "manifest.yml lists host(s) ghost")


# ---- item 3: VM disks ---------------------------------------------------------------------------------------


def vm_members(tmp_path: Path, make_disk: Callable[[Path], None]) -> dict[str, bytes]:
    disk = tmp_path / "made.disk"
    make_disk(disk)
    topo = topology(provider="qemu", hosts=[{"name": "v1", "groups": ["memcached"], "networks": ["lab"]}])
    man = manifest({"v1": archive.manifest_entry("qemu", "vm", "vm-v1")})
    files = {"vm-v1/disk.qcow2": disk.read_bytes(), "vm-v1/vmlinuz": b"k", "vm-v1/initrd.img": b"i"}
    files["vm-v1/image.json"] = b"{}"
    return members_of(topo, man, files)


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", "create", "-q", *args], check=True)


@needs_qemu_img
@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("data_file", "external data file"),
        ("data_file_raw", "external data file"),
        ("raw", "not a qcow2 image"),
        ("backing", "not flattened"),
    ],
)
def test_vm_disks_that_refer_outside_the_archive_are_refused(
    fake: dict[str, str], tmp_path: Path, kind: str, problem: str
) -> None:
    secret = tmp_path / "host-file"
    secret.write_bytes(b"S" * 65536)  # a file of this machine the disk would read as its data

    def make(disk: Path) -> None:
        if kind == "raw":
            qemu_img("-f", "raw", str(disk), "1M")
        elif kind == "backing":
            qemu_img("-f", "qcow2", "-b", str(secret), "-F", "raw", str(disk), "1M")
        else:
            raw = ",data_file_raw=on" if kind == "data_file_raw" else ""
            qemu_img("-f", "qcow2", "-o", f"data_file={secret}{raw}", str(disk), "64K")

    path = write_archive(tmp_path / "a.tar", vm_members(tmp_path, make))
    err = assert_refused(fake, up_from(fake, path), "hosts/vm-v1/disk.qcow2", problem)
    assert str(secret) not in err or kind == "backing"


@needs_qemu_img
def test_check_disk_never_opens_the_data_file_a_disk_names(tmp_path: Path) -> None:
    """The header is read first: qemu-img is never run on a disk that names a data file (it would open it)."""
    target = tmp_path / "fifo"
    os.mkfifo(target)  # opening it for reading would block: a hang proves qemu-img was made to open it
    disk = tmp_path / "disk.qcow2"
    made = tmp_path / "plain"
    made.write_bytes(b"")
    qemu_img("-f", "qcow2", "-o", f"data_file={made}", str(disk), "64K")
    subprocess.run(["qemu-img", "amend", "-q", "-o", f"data_file={target}", str(disk)], check=False, timeout=10)
    t0 = time.monotonic()
    with pytest.raises(LabError, match=r"external data file.*Fix:"):
        vmsave.check_disk("v1", disk)
    assert time.monotonic() - t0 < 5


# ---- item 4: image names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "tags"),
    [
        ("podman-hosts.tar#docker.io/library/postgres:16", ["docker.io/library/postgres:16"]),
        ("podman-hosts.tar#--help", ["--help"]),
        ("other.tar#" + SAVED, [SAVED]),
        (f"podman-hosts.tar#localhost/labctl-saved/{SRC}_h2:latest", [f"localhost/labctl-saved/{SRC}_h2:latest"]),
    ],
)
def test_image_names_from_the_manifest_are_refused(
    fake: dict[str, str], tmp_path: Path, file: str, tags: list[str]
) -> None:
    man = manifest({"h1": archive.manifest_entry("podman", "container", file)})
    path = write_archive(tmp_path / "a.tar", members_of(man=man, hosts={"podman-hosts.tar": image_archive(tags)}))
    assert_refused(fake, up_from(fake, path), "hosts.h1.file", "labctl-saved")


@pytest.mark.parametrize(
    ("inner", "problem"),
    [
        (image_archive([SAVED, "docker.io/library/postgres:16"]), "docker.io/library/postgres:16"),
        (image_archive([SAVED], {"index.json": b"{}"}), "'index.json'"),
        (tar_bytes({"x": b""}), "no manifest.json"),
        (b"not a tar at all", "cannot be read as an image archive"),
        (image_archive([]), "no RepoTags"),
    ],
)
def test_an_image_archive_that_names_other_images_is_refused_before_podman_load(
    fake: dict[str, str], tmp_path: Path, inner: bytes, problem: str
) -> None:
    path = write_archive(tmp_path / "a.tar", members_of(hosts={"podman-hosts.tar": inner}))
    assert_refused(fake, up_from(fake, path), "hosts/podman-hosts.tar", problem)


def test_an_image_name_already_on_this_machine_is_never_moved(fake: dict[str, str], tmp_path: Path) -> None:
    for held in (SAVED, "localhost/labctl-restored/ta-new_h1:latest"):
        Path(fake["FAKE_WORLD"]).write_text(json.dumps({"containers": [], "networks": [], "images": [held]}))
        path = write_archive(tmp_path / "a.tar", members_of())
        assert_refused(fake, up_from(fake, path), f"image name {held!r}", "podman rmi")
        assert world(fake)["images"] == [held]


def test_a_sound_archive_loads_its_own_images_under_labctls_names(
    fake: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The positive case (in-process, the same fakes): podman load of the staged file (inside the state
    root), the loaded name checked, the host's image named by labctl, the archive's name untagged."""
    for key in ("PATH", "LABCTL_STATE_DIR", "LABCTL_RUNTIME_DIR", "FAKE_WORLD", "FAKE_LOG", "LABCTL_PKGCACHE"):
        monkeypatch.setenv(key, fake[key])
    monkeypatch.setenv("TMPDIR", str(tmp_path / "no-such-dir"))  # staging ignores TMPDIR
    path = write_archive(tmp_path / "a.tar", members_of())
    lab, _ = archive.restore(path, "ta-new")
    assert lab.extra["images"] == {"h1": "localhost/labctl-restored/ta-new_h1:latest"}
    done = [c[1:] for c in mutating(fake)]
    assert done[0][:3] == ["load", "-q", "-i"] and done[0][3].startswith(fake["LABCTL_STATE_DIR"] + "/.labctl-restore-")
    assert done[1:] == [["tag", SAVED, "localhost/labctl-restored/ta-new_h1:latest"], ["untag", SAVED, SAVED]]
    assert world(fake)["images"] == ["localhost/labctl-restored/ta-new_h1:latest"]
    assert sorted(p.name for p in Path(fake["LABCTL_STATE_DIR"]).iterdir()) == ["ta-new"]  # staging removed
    trusted = topology(vars={"ansible_user": "root"})
    path = write_archive(tmp_path / "b.tar", members_of(trusted))
    with pytest.raises(LabError, match="ansible_user"):
        archive.restore(path, "ta-other")
    Path(fake["FAKE_WORLD"]).write_text(json.dumps({"containers": [], "networks": [], "images": []}))
    lab, _ = archive.restore(path, "ta-other", trust=True)
    assert lab.topo.vars == {"ansible_user": "root"}


def test_loaded_names_reads_both_podman_output_forms() -> None:
    assert podman_provider.loaded_names("Loaded image: a:1\nLoaded image: b:2\n") == {"a:1", "b:2"}
    assert podman_provider.loaded_names("Loaded image(s): a:1,b:2\n") == {"a:1", "b:2"}
    assert podman_provider.loaded_names("Copying blob\n") == set()


# ---- item 5: bounded unpacking, only files and directories ----------------------------------------------


def info(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    item = tarfile.TarInfo(name)
    item.type = kind
    item.linkname = linkname
    return item


@pytest.mark.parametrize(
    ("special", "member", "problem"),
    [
        (info("hosts/link", tarfile.SYMTYPE, "/etc/shadow"), "hosts/link", "not a regular file or directory"),
        (info("hosts/hard", tarfile.LNKTYPE, "/etc/passwd"), "/etc/passwd", "absolute"),
        (info("hosts/hard2", tarfile.LNKTYPE, "hosts/later"), "hosts/hard2", "not a file unpacked before it"),
        (info("hosts/dev", tarfile.CHRTYPE), "hosts/dev", "device"),
        (info("hosts/fifo", tarfile.FIFOTYPE), "hosts/fifo", "FIFO"),
        (info("/tmp/ta-abs", tarfile.REGTYPE), "/tmp/ta-abs", "absolute"),
        (info("../ta-up", tarfile.REGTYPE), "../ta-up", "'..'"),
        (info("hosts/../../ta-up", tarfile.REGTYPE), "hosts/../../ta-up", "'..'"),
        (info("manifest.yml", tarfile.REGTYPE), "manifest.yml", "appears twice"),
    ],
)
def test_members_that_are_not_plain_files_or_leave_the_stage_are_refused(
    fake: dict[str, str], tmp_path: Path, special: tarfile.TarInfo, member: str, problem: str
) -> None:
    path = write_archive(tmp_path / "a.tar", members_of(), [special])
    assert_refused(fake, up_from(fake, path), member, problem)
    assert not Path("/tmp/ta-abs").exists() and not (tmp_path / "ta-up").exists()


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def test_a_gzip_bomb_stops_at_the_limit_before_writing_it(fake: dict[str, str], tmp_path: Path) -> None:
    """A ~250 KiB .tar.gz that unpacks to 256 MiB: refused at the member's header, nothing of it written."""
    path = tmp_path / "bomb.tar.gz"
    with gzip.open(path, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w") as tar:  # type: ignore[call-overload]
        for name, data in members_of().items():
            item = tarfile.TarInfo(name)
            item.size = len(data)
            tar.addfile(item, io.BytesIO(data))
        big = tarfile.TarInfo("hosts/big")
        big.size = 256 * 1024**2
        tar.addfile(big, io.BufferedReader(_Zeros(big.size)))
    assert path.stat().st_size < 2 * 1024**2
    t0 = time.monotonic()
    env = dict(fake, LABCTL_ARCHIVE_MAX_BYTES=str(1024**2))
    assert_refused(env, up_from(env, path), "member 'hosts/big'", "limit of 1048576 bytes", "LABCTL_ARCHIVE_MAX_BYTES")
    assert time.monotonic() - t0 < 30


def test_member_count_and_manifest_size_are_bounded(fake: dict[str, str], tmp_path: Path) -> None:
    many = members_of(hosts={"podman-hosts.tar": image_archive([SAVED]), **{f"f{i}": b"" for i in range(20)}})
    env = dict(fake, LABCTL_ARCHIVE_MAX_MEMBERS="10")
    assert_refused(env, up_from(env, write_archive(tmp_path / "a.tar", many)), "limit of 10 members")
    big = yaml.safe_dump(manifest(padding="x" * 5000)).encode()
    env = dict(fake, LABCTL_ARCHIVE_MAX_MANIFEST_BYTES="1000")
    path = write_archive(tmp_path / "b.tar", members_of(man=big))
    assert_refused(env, up_from(env, path), "member 'manifest.yml'", "more than the 1000")
    env = dict(fake, LABCTL_ARCHIVE_MAX_BYTES="abc")
    assert_refused(env, up_from(env, path), "LABCTL_ARCHIVE_MAX_BYTES='abc'")


# ---- malformed manifests and topologies (item 12's archive inputs) -------------------------------------------


BOMB = b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n".encode() for i in range(8)
)


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ({"man": manifest({"h1": "podman-hosts.tar"})}, "field 'hosts.h1' is not a mapping"),
        ({"man": manifest({"h1": {"provider": "podman"}})}, "has no 'file'"),
        ({"man": manifest({"h1": {"provider": "podman", "file": "../../etc/passwd#x"}})}, "not a file of the archive"),
        ({"man": manifest({"h1": {"provider": 3, "file": "x"}})}, "has no 'provider'"),
        ({"man": manifest({"H 1": {"provider": "podman", "file": "x"}})}, "not a host name"),
        ({"man": manifest(lab="--rm")}, "field 'lab' is not a lab name"),
        ({"man": b"- a list\n"}, "not a labctl manifest"),
        ({"man": b"kind: [unclosed\n"}, "manifest.yml is not YAML"),
        ({"man": b"\xff\xfe\x00"}, "manifest.yml is not UTF-8"),
        ({"topo": b"hosts: [unclosed\n"}, "topology.yml is not YAML"),
        ({"topo": False}, "no topology.yml"),
        ({"topo": b"- a\n- list\n"}, "topology.yml is not a mapping"),
        ({"topo": b"[" * 5000 + b"]" * 5000}, "topology.yml"),
        ({"topo": BOMB + b"name: x\n"}, "more than 200000 values"),
        ({"topo": topology(hosts="h1")}, "field 'hosts'"),
        ({"topo": topology(networks=[{"name": "lab", "subnet": "198.18.200.0/33"}])}, "subnet"),
        ({"lock": None}, "no lab.lock"),
    ],
)
def test_malformed_manifests_and_topologies_are_clear_errors(
    fake: dict[str, str], tmp_path: Path, members: dict[str, Any], problem: str
) -> None:
    built = members_of(members.get("topo"), members.get("man"), lock=members.get("lock", b"{}\n"))
    path = write_archive(tmp_path / "a.tar", built)
    assert_refused(fake, up_from(fake, path), problem)


def test_damaged_or_foreign_files_are_clear_errors(fake: dict[str, str], tmp_path: Path) -> None:
    whole = tmp_path / "whole.tar.gz"
    with tarfile.open(whole, "w:gz") as tar:
        for name, data in members_of().items():
            item = tarfile.TarInfo(name)
            item.size = len(data)
            tar.addfile(item, io.BytesIO(data))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert_refused(fake, up_from(fake, cut), "damaged")
    text = tmp_path / "text.tar"
    text.write_text("hello")
    assert_refused(fake, up_from(fake, text), "cannot be opened as tar")
    assert_refused(fake, up_from(fake, tmp_path / "missing.tar"), "cannot be opened as tar")


# ---- item 6: a failed restore removes only what it made -------------------------------------------------------


def test_a_failed_restore_never_downs_a_same_named_lab(fake: dict[str, str], tmp_path: Path) -> None:
    """A lab named ta-new lost its state but its containers run (label labctl.lab=ta-new). A restore under
    that name that fails after podman load (tag fails) removes the images it loaded and its own state only:
    the old code ran a full `down` on the name, force-removing those containers."""
    theirs = {"Id": "id-theirs", "Names": ["labctl-ta-new_old"], "State": "running",
              "Labels": {"labctl.lab": "ta-new", "labctl.host": "old"}}  # fmt: skip
    Path(fake["FAKE_WORLD"]).write_text(json.dumps({"containers": [theirs], "networks": [], "images": ["keep:1"]}))
    env = dict(fake, FAKE_FAIL="tag")
    result = up_from(env, write_archive(tmp_path / "a.tar", members_of()))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "fake failure of tag" in flat(result.stderr)
    done = [c[1:] for c in mutating(env)]
    assert done[0][0] == "load" and done[1][0] == "tag"
    assert done[2:] == [["rmi", "--force", "--", SAVED, "localhost/labctl-restored/ta-new_h1:latest"]]
    assert not any(c[1] == "rm" or (c[1:3] == ["ps", "-a"] and "-q" in c) for c in calls(env))
    assert world(env)["containers"] == [theirs] and world(env)["images"] == ["keep:1"]
    assert [p.name for p in Path(env["LABCTL_STATE_DIR"]).iterdir()] == []  # its state and staging are gone


@needs_qemu_img
def test_a_failed_vm_restore_removes_only_the_disks_it_moved(
    fake: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lab of two VMs whose second saved disk fails while moving: the first disk, moved already, is removed
    again, and so is the state directory the restore made; nothing else."""

    def make(disk: Path) -> None:
        qemu_img("-f", "qcow2", str(disk), "1M")

    built = vm_members(tmp_path, make)
    hosts = [{"name": n, "groups": ["memcached"], "networks": ["lab"]} for n in ("v1", "v2")]
    built["topology.yml"] = yaml.safe_dump(topology(provider="qemu", hosts=hosts)).encode()
    entries = {n: archive.manifest_entry("qemu", "vm", f"vm-{n}") for n in ("v1", "v2")}
    built["manifest.yml"] = yaml.safe_dump(manifest(entries)).encode()
    for name in ("disk.qcow2", "vmlinuz", "initrd.img", "image.json"):
        built[f"hosts/vm-v2/{name}"] = built[f"hosts/vm-v1/{name}"]
    path = write_archive(tmp_path / "a.tar", built)
    for key in ("PATH", "LABCTL_STATE_DIR", "LABCTL_RUNTIME_DIR", "FAKE_WORLD", "FAKE_LOG", "LABCTL_PKGCACHE"):
        monkeypatch.setenv(key, fake[key])
    real_import = vmsave.import_vm
    moved: list[Path] = []

    def flaky(host: str, saved: Path, images: Path, archive: str = "the saved lab") -> Any:
        if host == "v2":
            raise LabError("boom. Fix: none.")
        img = real_import(host, saved, images)
        moved.append(img.dir)
        return img

    monkeypatch.setattr(vmsave, "import_vm", flaky)
    keep = Path(fake["LABCTL_STATE_DIR"]) / "other-lab"
    keep.mkdir(parents=True)
    (keep / "precious").write_text("must survive\n")
    with pytest.raises(LabError, match="boom"):
        archive.restore(path, "ta-new")
    assert moved and all(str(d).startswith(fake["LABCTL_STATE_DIR"] + "/ta-new/vms/.images/") for d in moved)
    assert sorted(p.name for p in Path(fake["LABCTL_STATE_DIR"]).iterdir()) == ["other-lab"]
    assert (keep / "precious").read_text() == "must survive\n"
