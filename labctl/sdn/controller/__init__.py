"""The sliceable switch controller shipped to the sdn_controller host (as the package labctl_sdn).

slices.py is the pure slice logic, rest.py the Trema-shaped REST layer, app.py the os-ken app. These
modules import only each other (relatively) and the standard library / os-ken: they run on the host."""
