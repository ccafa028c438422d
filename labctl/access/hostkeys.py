"""The lab's known_hosts: each host's SSH host key, learnt when labctl makes the host, checked on every connection.

Where a key comes from (never from an SSH connection to a host labctl made): podman reads it from the
new container (``podman exec``), qemu generates it on this machine and hands it over in the first-boot
credential, a static host is trusted on first use (``ssh-keyscan``, bounded) and checked ever after.
The file (``LabState.known_hosts``) is what Fabric/paramiko, ssh/scp (``ssh_config``) and Ansible/mitogen
(``-o UserKnownHostsFile``) read, all with strict checking. Entries are written as ssh writes them
(``address`` for port 22, ``[address]:port`` otherwise); hashed entries (``|1|salt|hash``) written by
``ssh-keygen -H`` are understood too. A host made again replaces its own entry, never another's.

What a host reports as its key is data: it is checked (known key types, base64, bounded size and count)
before anything is written."""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from labctl.errors import LabError
from labctl.state import write_atomic

KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
MAX_TEXT = 16 * 1024  # what a host's key listing may be: a few public keys
MAX_KEYS = 8
MAX_BLOB = 2048  # base64 characters of one public key (RSA 8192 is ~1400)
KEYSCAN_TIMEOUT = 10  # seconds: ssh-keyscan -T (trust on first use of a static host)
KEYSCAN_TYPES = "ed25519,ecdsa,rsa"

_THREADS = threading.Lock()


def host_pattern(address: str, port: int = 22) -> str:
    """How ssh names a host in known_hosts: the address, or [address]:port off port 22."""
    return address if port == 22 else f"[{address}]:{port}"


def parse_keys(text: str, source: str) -> list[str]:
    """The public keys in text (lines ``type base64 [comment]``, as /etc/ssh/ssh_host_*_key.pub or the output of
    ssh-keyscan, whose lines start with the host), as ``type base64``. source names where the text came from
    for the error. A line that is no key of a known type, too much text or too many keys: LabError."""
    if len(text) > MAX_TEXT:
        raise _bad(source, f"{len(text)} characters, more than {MAX_TEXT}")
    keys: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] not in KEY_TYPES and len(words) >= 3 and words[1] in KEY_TYPES:
            words = words[1:]  # ssh-keyscan: "host type key"
        keys.append(_key(words, source))
    if not keys:
        raise _bad(source, "no public key")
    if len(keys) > MAX_KEYS:
        raise _bad(source, f"{len(keys)} keys, more than {MAX_KEYS}")
    return list(dict.fromkeys(keys))


def _key(words: list[str], source: str) -> str:
    if len(words) < 2 or words[0] not in KEY_TYPES:
        raise _bad(source, f"a line that is not a public key of a known type ({', '.join(KEY_TYPES)})")
    kind, blob = words[0], words[1]
    if len(blob) > MAX_BLOB:
        raise _bad(source, f"a {kind} key of {len(blob)} characters, more than {MAX_BLOB}")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(source, f"a {kind} key that is not base64") from None
    if raw[4 : 4 + len(kind)] != kind.encode():
        raise _bad(source, f"a {kind} key whose content names another type")
    return f"{kind} {blob}"


def _bad(source: str, what: str) -> LabError:
    return LabError(
        f"the SSH host key reported by {source} is not usable: {what}. Nothing was written to the lab's known_hosts. "
        "Fix: check the host's /etc/ssh/ssh_host_*_key.pub files (or re-create the host)."
    )


def _matches(field: str, name: str) -> bool:
    """Whether a known_hosts host field (comma-separated names, or one hashed |1|salt|hash) names name."""
    if field.startswith("|1|"):
        parts = field.split("|")
        if len(parts) != 4:
            return False
        try:
            salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), digest)
    return name in field.split(",")


def _names(line: str) -> str:
    words = line.split()
    if not words or words[0].startswith("#"):
        return ""
    return words[1] if words[0].startswith("@") and len(words) > 1 else words[0]


def without(text: str, address: str, port: int = 22) -> str:
    """known_hosts text less every line that names this host (other hosts' lines and comments kept)."""
    name = host_pattern(address, port)
    kept = [line for line in text.splitlines() if not (_names(line) and _matches(_names(line), name))]
    return "".join(f"{line}\n" for line in kept)


def replace(text: str, address: str, keys: list[str], port: int = 22) -> str:
    """known_hosts text with this host's lines replaced by one line per key."""
    name = host_pattern(address, port)
    return without(text, address, port) + "".join(f"{name} {key}\n" for key in keys)


def keys_of(text: str, address: str, port: int = 22) -> list[str]:
    """The keys known_hosts text holds for this host (``type base64``; revoked/CA lines are not keys)."""
    name = host_pattern(address, port)
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and not words[0].startswith(("#", "@")) and _matches(words[0], name):
            out.append(f"{words[1]} {words[2]}")
    return out


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer of the lab's known_hosts at a time (threads of one up, and other labctl commands)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _THREADS, open(path.with_name(f".{path.name}.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def known(path: Path, address: str, port: int = 22) -> list[str]:
    return keys_of(read(path), address, port)


def learn(path: Path, address: str, keys: list[str], port: int = 22) -> None:
    """Make keys the host's only entry in the known_hosts file path."""
    with _locked(path):
        write_atomic(path, replace(read(path), address, keys, port), 0o600)


def forget(path: Path, address: str, port: int = 22) -> bool:
    """Remove the host's entry; True when there was one."""
    with _locked(path):
        text = read(path)
        if not keys_of(text, address, port):
            return False
        write_atomic(path, without(text, address, port), 0o600)
        return True


def keyscan(address: str, port: int = 22, timeout: int = KEYSCAN_TIMEOUT) -> list[str]:
    """The host keys the SSH server at address serves (ssh-keyscan, at most timeout seconds per try)."""
    try:
        result = subprocess.run(
            ["ssh-keyscan", "-T", str(timeout), "-t", KEYSCAN_TYPES, "-p", str(port), "--", address],
            capture_output=True,
            text=True,
            timeout=timeout * 3 + 5,
            check=False,
            errors="replace",
        )
    except FileNotFoundError:
        raise LabError("ssh-keyscan is not installed. Fix: apt-get install openssh-client.") from None
    except subprocess.TimeoutExpired:
        raise LabError(
            f"ssh-keyscan of {address} did not finish within {timeout * 3 + 5} s. Fix: check that the host answers SSH."
        ) from None
    if not result.stdout.strip():
        raise LabError(
            f"the SSH server at {host_pattern(address, port)} sent no host key within {timeout} s, so labctl cannot "
            "learn it (trust on first use). Fix: check that the host is up and answers SSH, then run the command again."
        )
    return parse_keys(result.stdout[: MAX_TEXT + 1], f"the SSH server at {host_pattern(address, port)}")


def fix_for(lab: str, host: str, provider: str) -> str:
    """How a user makes labctl connect again to a host whose key is not the one learnt."""
    if provider == "qemu":
        return (
            f"restart the VM: 'labctl restart --name {lab} {host}' (its first-boot credential writes the key "
            f"labctl made for it back at boot), or re-create it: 'labctl down --name {lab}', then 'labctl up'"
        )
    if provider == "podman":
        return (
            f"re-create the host ('labctl down --name {lab}', then 'labctl up'); if you changed its key yourself, "
            f"'labctl forget-key --name {lab} {host}' and 'labctl up --name {lab}' learn the new one from the container"
        )
    return (
        f"if the host's key was changed on purpose (compare 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub' "
        f"on the host itself), run 'labctl forget-key --name {lab} {host}': the next connection learns the new "
        "key; otherwise do not connect: something else answers at that address"
    )


def changed(lab: str, host: str, provider: str, known_hosts: Path) -> LabError:
    """The error for a host whose SSH host key is not the one in the lab's known_hosts."""
    return LabError(
        f"host {host!r} of lab {lab!r}: its SSH host key changed since labctl learnt it (the lab's known_hosts "
        f"{known_hosts}), so labctl refuses to connect (someone may be impersonating it). "
        f"Fix: {fix_for(lab, host, provider)}."
    )


MISMATCH_MARKS = (
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "Host key verification failed",
    "mismatching host key",
    "No ED25519 host key is known",
    "No ECDSA host key is known",
    "No RSA host key is known",
)


def says_mismatch(text: str) -> bool:
    """Whether ssh's (or mitogen's) message says the host key did not match the lab's known_hosts."""
    return any(mark.lower() in text.lower() for mark in MISMATCH_MARKS)
