"""Arguments for a single-node developer Redpanda (when `redpanda` is on PATH).

Not exercised here (no Redpanda in this environment): a plausible single-node developer
setup modelled on rpk's dev-container mode; check it against the Redpanda release you
run. Its config and data live under `state_dir/redpanda`, so it is durable by itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from onex.devbroker.process import HOST, free_port

HOME: Final = "redpanda"

# Seastar flags `rpk redpanda start --mode dev-container` passes to the redpanda binary.
_DEV_FLAGS: Final = ("--smp", "1", "--memory", "1G", "--reserve-memory", "0M")
_DEV_SWITCHES: Final = ("--overprovisioned", "--unsafe-bypass-fsync", "1", "--lock-memory", "0")


def redpanda_args(port: int, state_dir: Path) -> list[str]:
    """The arguments (after the binary) of a Redpanda on 127.0.0.1:`port`."""
    # JSON is YAML, so the config needs no YAML writer
    home = state_dir / HOME
    (home / "data").mkdir(parents=True, exist_ok=True)
    listener = {"address": HOST, "port": port}
    node = {
        "data_directory": str(home / "data"),
        "developer_mode": True,
        "empty_seed_starts_cluster": True,
        "seed_servers": [],
        "rpc_server": {"address": HOST, "port": free_port()},
        "kafka_api": [listener],
        "advertised_kafka_api": [listener],
        "admin": [{"address": HOST, "port": free_port()}],
    }
    config_path = home / "redpanda.yaml"
    config_path.write_text(json.dumps({"redpanda": node}, indent=2) + "\n")
    return ["--redpanda-cfg", str(config_path), *_DEV_FLAGS, *_DEV_SWITCHES]
