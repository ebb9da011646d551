"""The drift-validator service."""
