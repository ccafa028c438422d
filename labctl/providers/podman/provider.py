"""Podman provider: every host is a systemd container (runc), every network a podman bridge.

The names of a lab's containers and networks, their label and the bridges are labctl.providers.bridge's
(shared with qemu, whose VMs plug into the same bridges). No podman argument or filter, and no iptables
rule, is built from a lab name that is empty or invalid (bridge.checked)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.access import kernellog
from labctl.errors import LabError, printable
from labctl.providers import hostlimits, image, pkgcache
from labctl.providers.base import HostInfo, HostSpec, HostState, Provider, Say, register
from labctl.providers.bridge import (
    LABEL,
    SEPARATOR,
    SET_ASIDE,
    Bridges,
    checked,
    checked_part,
    container_name,
    label,
    mac_address,
    network_list,
    network_name,
    podman,
)

if TYPE_CHECKING:
    from labctl.access.remote import Runner

# Below the host's hard limits (podman's defaults fail with EPERM without CAP_SYS_RESOURCE).
ULIMITS = ("nofile=16384:16384", "nproc=32768:32768")
# The lab's key is copied into the host, not mounted from the state directory: a host keeps working
# (and restarting) when that directory is lost, and `up` puts a new key in. Hosts made by older
# labctl versions bind-mounted the key file: that mount is dropped first.
AUTHORIZE = (
    "set -e; umount /root/.ssh/authorized_keys 2>/dev/null || true; install -d -m 700 /root/.ssh; "
    "cat > /root/.ssh/.authorized_keys.labctl; chmod 600 /root/.ssh/.authorized_keys.labctl; "
    "mv -f /root/.ssh/.authorized_keys.labctl /root/.ssh/authorized_keys"
)


SAVED_REPO = "localhost/labctl-saved"  # images of hosts being saved (removed once in the archive)
RESTORED_REPO = "localhost/labctl-restored"  # images hosts of a restored lab are created from
HOSTS_ARCHIVE = "podman-hosts.tar"
HOSTS_DIR_NAME = "hosts"  # the archive's directory of host files (labctl/archive.py HOSTS_DIR)
# the only image names a saved lab's manifest may give: labctl's own, of one lab and the host
SAVED_REF = re.compile(r"^localhost/labctl-saved/([a-z][a-z0-9-]{0,30})_([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?):latest$")
MAX_IMAGE_MANIFEST = 1024**2

HOST_KEYS_CMD = "cat /etc/ssh/ssh_host_*_key.pub"
HOST_KEYS_MAX = 16 * 1024


@register("podman")
class PodmanProvider(Bridges, Provider):
    name = "podman"
    kernel_log = kernellog.MACHINE  # containers share this machine's kernel (and its log)
    reads_host_keys = True  # podman exec reads them from the container's files

    def __init__(self) -> None:
        self._default_image: str | None = None
        self._cache = False

    def prepare(self, hosts: list[HostSpec], say: Say) -> None:
        """Raise the host's inotify limits if the hosts about to start need more (before anything is
        made), then build the base image when a host uses it and it is missing."""
        if hosts:
            running = {h for h, info in self.list(hosts[0].lab).items() if info.state == HostState.RUNNING}
            hostlimits.ensure_inotify(len([h for h in hosts if h.name not in running]), say)
            kernellog.ensure_netns_logging(say)
            self._cache = pkgcache.ensure(say)
        if any(h.image is None for h in hosts):
            self._default_image = image.build(progress=say)

    def key_at_create(self, spec: HostSpec) -> bool:
        """labctl's base image takes the lab's key from the host's environment at its first boot
        (image.FIRST_KEY): no `podman exec` per new host. Another image gets it through authorize()."""
        return spec.image is None and bool(spec.authorized_key)

    def create(self, spec: HostSpec) -> bool:
        """Create and start the host in one podman process (`podman run -d`)."""
        args = [
            "run",
            "--detach",
            "--runtime",
            "runc",
            "--systemd=always",
            "--privileged",
            "--name",
            container_name(spec.lab, spec.name),
            "--hostname",
            spec.name,
            "--label",
            label(spec.lab),
            "--label",
            f"labctl.host={spec.name}",
        ]
        for limit in ULIMITS:
            args += ["--ulimit", limit]
        for net, addr in spec.networks.items():
            # the alias makes the host name resolve through the network's DNS too (hosts added later)
            opts = f"ip={addr},mac={mac_address(addr)},alias={spec.name}"
            args += ["--network", f"{network_name(spec.lab, net)}:{opts}"]
        for other, addr in spec.extra_hosts.items():
            args += ["--add-host", f"{other}:{addr}"]
        if self.key_at_create(spec):
            args += ["--env", f"{image.KEY_ENV}={spec.authorized_key.strip()}"]
        if spec.image is None and self._default_image is None:
            self._default_image = image.image_tag()
        args.append(spec.image or self._default_image or "")
        podman(*args, what=f"to create host {spec.name!r}")
        return True

    def authorize(self, lab: str, host: str, pubkey: str) -> None:
        """Make pubkey the key root accepts, through podman exec (works while SSH refuses the lab's key)."""
        podman(
            "exec",
            "-i",
            container_name(lab, host),
            "sh",
            "-c",
            AUTHORIZE,
            stdin=pubkey,
            what=f"to put the lab's SSH key into host {host!r}",
        )

    def host_keys(self, lab: str, host: str) -> str:
        """The public SSH host keys of the running container, read through podman (not over SSH): sshd's
        ExecStartPre made them before it answered. At most HOST_KEYS_MAX bytes are read (the image may be a
        stranger's)."""
        argv = ["podman", "exec", container_name(lab, host), "sh", "-c", HOST_KEYS_CMD]
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except FileNotFoundError:
            raise LabError("podman is not installed. Fix: apt-get install podman runc.") from None
        assert proc.stdout is not None
        data = proc.stdout.read(HOST_KEYS_MAX + 1)
        proc.stdout.close()
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if code != 0 and len(data) <= HOST_KEYS_MAX:
            raise LabError(
                f"could not read the SSH host keys of host {host!r} through podman (exit {code}). "
                "Fix: check that the host runs ('labctl status') and has /etc/ssh/ssh_host_*_key.pub."
            )
        return data.decode(errors="replace")

    def console(self, lab: str, host: str, lines: int = 15) -> str:
        """The last lines of the host's console (what systemd printed before it exited)."""
        result = podman("logs", "--tail", str(lines), container_name(lab, host), check=False)
        return (result.stdout + result.stderr).strip()

    def show_console(self, lab: str, host: str, interactive: bool) -> int:
        """A container's console is its init's output (podman logs); a shell is 'labctl ssh'."""
        result = podman("logs", container_name(lab, host), what=f"to read the console of {host!r}")
        sys.stdout.write(result.stdout + result.stderr)
        if interactive:
            sys.stderr.write(f"(a container has no interactive console: 'labctl ssh {host}' opens a shell)\n")
        return 0

    def exit_code(self, lab: str, host: str) -> int | None:
        result = podman("inspect", "--format", "{{.State.ExitCode}}", container_name(lab, host), check=False)
        return int(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip().isdigit() else None

    def start(self, lab: str, host: str) -> None:
        podman("start", container_name(lab, host), what=f"to start host {host!r}")

    def stop(self, lab: str, host: str) -> None:
        podman("stop", "--time", "10", container_name(lab, host), what=f"to stop host {host!r}")

    def destroy(self, lab: str, host: str) -> None:
        podman("rm", "--force", "--time", "5", container_name(lab, host), what=f"to remove host {host!r}")

    def destroy_lab(self, lab: str) -> list[str]:
        removed = []
        self.unlink_networks(lab)
        ids = podman("ps", "-a", "-q", "--filter", f"label={label(lab)}").stdout.split()
        if ids:
            podman("rm", "--force", "--time", "5", *ids, what=f"to remove the containers of lab {lab!r}")
            removed += [f"container {i[:12]}" for i in ids]
        nets = [n["name"] for n in network_list() if (n.get("labels") or {}).get(LABEL) == checked(lab)]
        if nets:
            podman("network", "rm", "--force", *nets, what=f"to remove the networks of lab {lab!r}")
            removed += [f"network {n}" for n in nets]
        images = _restored_images(lab)
        if images:
            podman("rmi", *images, check=False)
            removed += [f"image {i}" for i in images]
        return removed

    def image_info(self, hosts: list[HostSpec]) -> dict[str, str]:
        """The image the hosts are made from: the base image (tag with its recipe hash) and its ID."""
        tags = sorted({h.image or image.image_tag() for h in hosts})
        info = {"tag": ", ".join(tags)}
        if tags == [image.image_tag()]:
            info["recipe_hash"] = image.recipe_hash()
        ids = [podman("image", "inspect", "--format", "{{.Id}}", t, check=False).stdout.strip() for t in tags]
        info["id"] = ", ".join(i for i in ids if i)
        return info

    def export_hosts(
        self, lab: str, hosts: list[str], dest: Path, secrets: bool = False, runner: Runner | None = None
    ) -> dict[str, str]:
        """podman commit each host (paused, its private host keys and, unless secrets, the files roles list
        as secrets moved out first), then podman save all
        of them into one archive (layers they share, e.g. the base image, are written once)."""
        refs = {h: f"{SAVED_REPO}/{checked(lab)}{SEPARATOR}{checked_part(h, 'host')}:latest" for h in hosts}
        try:
            for host, ref in refs.items():
                name = container_name(lab, host)
                aside = ["out", *(["keep-secrets"] if secrets else [])]
                podman(
                    "exec",
                    "-i",
                    name,
                    "python3",
                    "-",
                    *aside,
                    stdin=SET_ASIDE.read_text(),
                    what=f"to set the host keys (and secrets) of {host!r} aside",
                )
                try:
                    podman(
                        "commit",
                        "--pause=true",
                        "--change",
                        f"LABEL labctl.saved={lab}",
                        name,
                        ref,
                        what=f"to commit host {host!r}",
                    )
                finally:
                    podman("exec", "-i", name, "python3", "-", "back", stdin=SET_ASIDE.read_text(), check=False)
            podman(
                "save",
                "--multi-image-archive",
                "-o",
                str(dest / HOSTS_ARCHIVE),
                *refs.values(),
                what=f"to save the hosts of lab {lab!r}",
            )
        finally:
            podman("rmi", "--force", *refs.values(), check=False)
        return {h: f"{HOSTS_ARCHIVE}#{ref}" for h, ref in refs.items()}

    def check_import(self, lab: str, files: dict[str, str], src: Path) -> None:
        """The saved images are data: each host's entry is hosts/podman-hosts.tar#<labctl's saved name of it>,
        the image archive is a docker-archive naming exactly those images (no other name podman load would
        set), and no image on this machine has those names or the names the restore gives (nothing else's
        tag is ever moved or removed)."""
        refs = _saved_refs(files)
        archive_file = src / HOSTS_ARCHIVE
        found = archive_tags(archive_file)
        if found != set(refs.values()):
            raise LabError(
                f"the saved lab's {HOSTS_DIR_NAME}/{HOSTS_ARCHIVE} names the image(s) {_shown(found)}, "
                f"not the hosts' {_shown(refs.values())}. "
                "Fix: restore only archives written by labctl save -o FILE (this one was altered)."
            )
        for ref in [*refs.values(), *(restored_ref(lab, h) for h in refs)]:
            if podman("image", "exists", ref, check=False).returncode == 0:
                raise LabError(
                    f"lab {lab!r}: the image name {ref!r} a restore needs is held by an image on this machine "
                    "(left by an earlier save or restore?); a restore never moves another image's name. "
                    f"Fix: if nothing needs it, 'podman rmi {ref}' (or 'labctl down --name {lab}'), then restore again."
                )

    def import_hosts(self, lab: str, files: dict[str, str], src: Path) -> dict[str, str]:
        """podman load the archive once (checked first: check_import), then name each host's image after the
        new lab (labctl's name, never one from the archive). On failure, what it made is removed."""
        self.check_import(lab, files, src)
        refs = _saved_refs(files)
        made: list[str] = []
        try:
            made += sorted(set(refs.values()))  # checked absent before: the load makes them
            result = podman("load", "-q", "-i", str((src / HOSTS_ARCHIVE).resolve()), what=f"to load {HOSTS_ARCHIVE}")
            loaded = loaded_names(result.stdout)
            if loaded != set(refs.values()):
                raise LabError(
                    f"podman load of the saved lab's {HOSTS_ARCHIVE} loaded {_shown(loaded) or 'nothing'}, "
                    f"not {_shown(refs.values())}. Fix: restore only archives written by "
                    "labctl save -o FILE (this one was altered)."
                )
            out: dict[str, str] = {}
            for host, ref in refs.items():
                new = restored_ref(lab, host)
                made.append(new)
                podman("tag", ref, new, what=f"to name the image of host {host!r}")
                out[host] = new
            for ref in sorted(set(refs.values())):
                podman("untag", ref, ref, check=False)
            return out
        except BaseException:
            if made:
                podman("rmi", "--force", "--", *made, check=False)
            raise

    def undo_import(self, lab: str, images: dict[str, str]) -> None:
        """Remove the images import_hosts named for lab (labctl's own names, checked absent before it)."""
        mine = sorted({ref for ref in images.values() if ref.startswith(f"{RESTORED_REPO}/{checked(lab)}{SEPARATOR}")})
        if mine:
            podman("rmi", "--force", "--", *mine, check=False)

    def remains(self, lab: str) -> list[str]:
        return []  # hosts and networks are all there is

    def labs(self) -> dict[str, dict[str, list[str]]]:
        """Every lab that has labelled resources, found by label alone: lab -> {hosts, networks}."""
        out: dict[str, dict[str, list[str]]] = {}
        items = json.loads(podman("ps", "-a", "--format", "json", "--filter", f"label={LABEL}").stdout or "[]")
        for item in items:
            labels = item.get("Labels") or {}
            if labels.get(LABEL):
                entry = out.setdefault(labels[LABEL], {"hosts": [], "networks": []})
                entry["hosts"].append(labels.get("labctl.host") or item["Names"][0])
        for lab, nets in self.networks().items():
            out.setdefault(lab, {"hosts": [], "networks": []})["networks"] += sorted(nets)
        return out

    def address(self, spec: HostSpec) -> str:
        return next(iter(spec.networks.values()))

    def package_proxies(self, specs: list[HostSpec]) -> dict[str, str]:
        """Host -> the URL of the shared package cache as the host reaches it (its first network's
        gateway: this machine); empty when the cache is not running."""
        if not specs or not (self._cache or pkgcache.enabled()):
            return {}
        gateways, subnets_of = {}, {}
        for net in network_list():
            subnets = net.get("subnets") or []
            if (net.get("labels") or {}).get(LABEL) and subnets and subnets[0].get("gateway"):
                gateways[net["name"]] = subnets[0]["gateway"]
                subnets_of[subnets[0]["gateway"]] = subnets[0].get("subnet") or f"{subnets[0]['gateway']}/32"
        # the cache listens on the lab bridges' own addresses only (they exist once a host is on them),
        # each admitting its own subnet: every lab's, so a restart for this lab keeps the others'
        if not pkgcache.ensure(listen=subnets_of):
            return {}
        out = {}
        for spec in specs:
            first = next(iter(spec.networks), None)
            gateway = gateways.get(network_name(spec.lab, first)) if first else None
            if gateway:
                out[spec.name] = pkgcache.proxy_url(gateway)
        return out

    def list(self, lab: str, hosts: list[HostSpec] | None = None) -> dict[str, HostInfo]:
        """Every container of the lab, by its labels (hosts no longer in the topology too)."""
        out = podman("ps", "-a", "--format", "json", "--filter", f"label={label(lab)}").stdout
        found: dict[str, HostInfo] = {}
        for item in json.loads(out or "[]"):
            host = (item.get("Labels") or {}).get("labctl.host")
            if host:
                state = str(item.get("State", "unknown"))
                said = HostState.STOPPED if state in ("exited", "created") else HostState.of(state)
                found[host] = HostInfo(host, said, item["Id"])
        return found


def restored_ref(lab: str, host: str) -> str:
    """The image a restored host is made from: named by labctl after the new lab and the host."""
    return f"{RESTORED_REPO}/{checked(lab)}{SEPARATOR}{checked_part(host, 'host')}:latest"


def _saved_refs(files: dict[str, str]) -> dict[str, str]:
    """host -> the image name save gave it, from the manifest's FILE#IMAGE entries, each proven to be
    hosts/podman-hosts.tar and localhost/labctl-saved/<one lab>_<that host>:latest (never an option, never
    another image's name)."""
    refs: dict[str, str] = {}
    for host, entry in files.items():
        file, _, ref = entry.partition("#")
        found = SAVED_REF.match(ref)
        if file != HOSTS_ARCHIVE or found is None or found.group(2) != host:
            raise LabError(
                printable(
                    f"the saved lab's manifest.yml field 'hosts.{host}.file' is {entry[:200]!r}, not "
                    f"'{HOSTS_ARCHIVE}#{SAVED_REPO}/<lab>{SEPARATOR}{host}:latest'. "
                    "Fix: restore only archives written by labctl save -o FILE (this one was altered)."
                )
            )
        refs[host] = ref
    if len({SAVED_REF.match(r).group(1) for r in refs.values()}) > 1:  # type: ignore[union-attr]
        raise LabError(
            "the saved lab's manifest.yml names images of more than one lab. "
            "Fix: restore only archives written by labctl save -o FILE (this one was altered)."
        )
    return refs


def archive_tags(path: Path) -> set[str]:
    """The names podman load would give the images of a saved docker-archive (its manifest.json's RepoTags);
    an archive podman could read as another format (OCI: index.json, oci-layout) is refused."""
    where = f"the saved lab's {HOSTS_DIR_NAME}/{HOSTS_ARCHIVE}"
    fix = "Fix: restore only archives written by labctl save -o FILE (this one was altered)."
    if not path.is_file():
        raise LabError(f"{where} is missing. {fix}")
    manifest: Any = None
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in ("index.json", "oci-layout"):
                    raise LabError(f"{where} holds {name!r}: it is no docker-archive of labctl's saved hosts. {fix}")
                if name == "manifest.json":
                    if not member.isreg() or member.size > MAX_IMAGE_MANIFEST:
                        raise LabError(
                            f"{where}: its manifest.json is not a file of at most {MAX_IMAGE_MANIFEST} bytes. {fix}"
                        )
                    handle = tar.extractfile(member)
                    manifest = json.loads(handle.read()) if handle else None
    except (OSError, tarfile.TarError, EOFError, ValueError) as exc:
        raise LabError(printable(f"{where} cannot be read as an image archive ({exc}). {fix}")) from None
    if not isinstance(manifest, list) or not all(isinstance(i, dict) for i in manifest):
        raise LabError(f"{where} has no manifest.json listing images. {fix}")
    tags: set[str] = set()
    for item in manifest:
        names = item.get("RepoTags")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise LabError(f"{where}: an image of its manifest.json has no RepoTags (names). {fix}")
        tags |= set(names)
    return tags


def _shown(names: Iterable[str]) -> str:
    """Names from an archive, as an error shows them: sorted, printable, bounded."""
    return printable(", ".join(sorted(set(names))))[:400]


def loaded_names(output: str) -> set[str]:
    """The image names `podman load -q` says it loaded ('Loaded image: X' lines, or 'Loaded image(s): X,Y')."""
    names: set[str] = set()
    for line in output.splitlines():
        head, sep, rest = line.partition(":")
        if sep and head.strip().startswith("Loaded image"):
            names |= {n.strip() for n in rest.split(",") if n.strip()}
    return names


def _restored_images(lab: str) -> list[str]:
    """The images hosts of a restored lab were made from (named after the lab, which holds no '_')."""
    prefix = f"{RESTORED_REPO}/{checked(lab)}{SEPARATOR}"
    listing = podman("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    return sorted({ref for ref in listing if ref.startswith(prefix)})
