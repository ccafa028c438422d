"""The SDN sliceable switch: slice logic, os-ken app, REST API and its client."""
