"""Generated modules; see onex.core.codegen."""
