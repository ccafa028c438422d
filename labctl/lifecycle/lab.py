"""The lifecycle's public names in one place, for the callers written before the split (the CLI).

Each lives in its own module now: model (the Lab), find, up, converge, down, status, parallel."""

from __future__ import annotations

from labctl.lifecycle.converge import converge_changed, refuse_changed_keys
from labctl.lifecycle.down import down, leftovers
from labctl.lifecycle.find import require, resolve
from labctl.lifecycle.model import KEPT, Lab
from labctl.lifecycle.parallel import WORKERS, Say, in_parallel, quiet
from labctl.lifecycle.status import UP_STATES, all_lab_rows, all_up, host_details, status, status_from_labels
from labctl.lifecycle.up import (
    LIVENESS_EVERY,
    SSH_TIMEOUT,
    Plan,
    UpOptions,
    UpReport,
    authorize,
    check_names,
    check_networks,
    check_settings,
    create_networks,
    exited,
    plan,
    reconcile,
    restart,
    up,
)

__all__ = [
    "KEPT",
    "LIVENESS_EVERY",
    "SSH_TIMEOUT",
    "UP_STATES",
    "WORKERS",
    "Lab",
    "Plan",
    "Say",
    "UpOptions",
    "UpReport",
    "all_lab_rows",
    "all_up",
    "authorize",
    "check_names",
    "check_networks",
    "check_settings",
    "converge_changed",
    "create_networks",
    "down",
    "exited",
    "host_details",
    "in_parallel",
    "leftovers",
    "plan",
    "quiet",
    "reconcile",
    "refuse_changed_keys",
    "require",
    "resolve",
    "restart",
    "status",
    "status_from_labels",
    "up",
]
