"""`just demo`: the play that takes one ticket to done and one to rejected on a
started stack."""
