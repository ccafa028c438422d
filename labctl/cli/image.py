"""labctl image build: the podman base image, or (--vm) the VM image."""

from __future__ import annotations

import argparse
import time

from labctl.cli.common import SubParsers, add_verb
from labctl.providers import image
from labctl.providers.qemu import vmimage
from labctl.ui import views


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "image", lambda _a: 2, "manage the base image")
    isub = p.add_subparsers(dest="image_verb", required=True, metavar="ACTION")
    b = isub.add_parser("build", help="build the base image (debootstrap + podman import)")
    b.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    b.add_argument("--vm", action="store_true", help="build the VM image (base tree + kernel, qcow2) instead")
    b.set_defaults(fn=cmd_image_build)


def cmd_image_build(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    tag = (
        vmimage.build(views.say, force=args.force).tag if args.vm else image.build(progress=views.say, force=args.force)
    )
    views.say(f"{tag} ready in {time.monotonic() - t0:.1f} s")
    return 0
