"""Moved to the nat_gateway role's bundle (roles/nat_gateway/checks/iptables.py).

Kept only until ``labctl.lifecycle.lab.host_details`` calls :func:`labctl.checks.bundles.host_details`."""

from __future__ import annotations

from labctl.bundles.nat_gateway.checks.iptables import COMMENT, Rule, forwards_from_rules, option, parse_counted_rules

__all__ = ["COMMENT", "Rule", "forwards_from_rules", "option", "parse_counted_rules"]
