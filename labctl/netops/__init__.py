"""Network operations on lab hosts: capture, impairments, iptables, host routes and interfaces."""
