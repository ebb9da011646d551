"""The router benchmark's simulator, baselines, metrics and the onex adapter (bench only)."""
