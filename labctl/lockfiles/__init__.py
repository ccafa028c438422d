"""Programs labctl runs on lab hosts (fed to python3 on stdin) to read and check what is installed."""
