"""Reaching lab hosts: host keys, SSH config and control sockets, Fabric and ssh commands."""
