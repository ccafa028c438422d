"""What labctl shows: tables, the topology graph, shell completion."""
