"""Reproducing a lab: lock files (LAB.lock), saved archives, the package cache."""
