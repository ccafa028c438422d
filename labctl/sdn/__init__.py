"""Moved to the sdn_controller role's bundle (roles/sdn_controller/). Kept only until labctl/cli.py calls
:func:`labctl.checks.bundles.add_cli_extensions`; delete then."""
