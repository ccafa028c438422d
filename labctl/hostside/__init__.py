"""Programs labctl runs on lab hosts (data read as text and sent over SSH; not imported)."""
