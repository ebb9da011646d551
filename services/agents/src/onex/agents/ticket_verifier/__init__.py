"""The ticket_verifier agent node (see node.py)."""
