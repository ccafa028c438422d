"""Smoke checks: one module per service (labctl/smoke/<service>.py), framework in base.py."""
