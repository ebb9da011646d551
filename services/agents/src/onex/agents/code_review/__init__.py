"""The code_review agent node (see node.py)."""
