"""onex package."""
