"""The sliceable switch controller shipped to the sdn_controller host (as the package labctl_sdn).

slices.py is the pure slice logic (Trema's tables), filters.py Trema's packet filters, rest.py Trema's
REST API, app.py the os-ken app. These
modules import only each other (relatively) and the standard library / os-ken: they run on the host."""
