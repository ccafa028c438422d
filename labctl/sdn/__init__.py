"""The SDN sliceable switch: the controller shipped to the host (controller/) and its client (client.py, cli.py)."""
