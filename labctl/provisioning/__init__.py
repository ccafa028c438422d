"""Ansible: the inventory, the playbook run, role fingerprints, secret variables."""
