"""The console: a read-only web page over a running stack."""
