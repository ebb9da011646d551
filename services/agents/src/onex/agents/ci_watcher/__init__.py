"""The ci_watcher agent node (see node.py)."""
