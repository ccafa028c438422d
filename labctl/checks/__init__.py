"""Smoke checks: one module per service (labctl/checks/<service>.py), framework in base.py."""
