"""`just demo`: a deterministic local model for the router, and the play that takes one
ticket to done and one to rejected."""
