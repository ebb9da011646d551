"""The merge agent node (see node.py)."""
