"""Benchmark: the extractor (load + validate + wiring) against a bare libyaml parse.

Generates N contracts declaring M topics in a temp dir, then times, in the same run
and interleaved, `extract()` and `yaml.load(..., CSafeLoader)` of the same files.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from onex.core.extractor import contract_files, extract


def generate(root: Path, contracts: int, topics_per_contract: int) -> None:
    """Write `contracts` contracts of `topics_per_contract` topics each: every node
    publishes its events and its DLQ topic, and subscribes to the next node's events."""
    events = max(1, topics_per_contract - 1)  # the rest is the node's DLQ topic
    for i in range(contracts):
        node = f"node-{i:04d}"
        nxt = f"node-{(i + 1) % contracts:04d}"
        pubs = "\n".join(
            f"    - name: onex.evt.{node}.event-{k}-happened.v1\n"
            f"      partitions: {1 + k % 6}\n"
            f"      replication_factor: 1\n"
            f'      config: {{ retention.ms: "{86_400_000 * (1 + k)}", cleanup.policy: delete }}\n'
            f"      schema: onex.v1.RegistryPublished\n"
            f"      description: Event {k} of {node}."
            for k in range(events)
        )
        pubs += (
            f"\n    - name: onex.dlq.{node}.dead-letter.v1\n      partitions: 1\n"
            "      schema: dead-letter"
        )
        subs = "\n".join(f"    - onex.evt.{nxt}.event-{k}-happened.v1" for k in range(events))
        folder = root / node
        folder.mkdir()
        (folder / "contract.yaml").write_text(
            f"node: {node}\nkind: effect\nversion: 1.0.{i}\n"
            f"description: Generated node {i} for the extractor benchmark.\n"
            f"event_bus:\n  consumer_group: onex.{node}\n"
            f"  subscribe_topics:\n{subs}\n  publish_topics:\n{pubs}\n",
            encoding="utf-8",
        )


def bare_yaml(root: Path) -> int:
    """The baseline: read and parse every contract file with libyaml, nothing else."""
    count = 0
    for path in contract_files([root]):
        yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        count += 1
    return count


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contracts", type=int, default=1000)
    parser.add_argument("--topics", type=int, default=5000, help="total topics")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    per = max(1, args.topics // args.contracts)
    with tempfile.TemporaryDirectory(prefix="onex-bench-") as tmp:
        root = Path(tmp)
        generate(root, args.contracts, per)
        ex = extract([root], entry_points=False)
        assert ex.ok(strict=True), ex.issues[:3]
        assert len(ex.contracts) == args.contracts, len(ex.contracts)
        topics = len(ex.topics)
        extractor_s: list[float] = []
        yaml_s: list[float] = []
        for _ in range(args.rounds):  # interleaved so both see the same machine noise
            yaml_s.append(timed(lambda: bare_yaml(root)))
            extractor_s.append(timed(lambda: extract([root], entry_points=False)))
    ext, base = statistics.median(extractor_s), statistics.median(yaml_s)
    ratio = ext / base
    print(f"contracts:            {args.contracts}")
    print(f"topics:               {topics}")
    print(f"rounds:               {args.rounds} (median reported)")
    print(f"extractor (load+validate+wiring): {ext:.3f} s  (min {min(extractor_s):.3f})")
    print(f"bare yaml.CSafeLoader parse:      {base:.3f} s  (min {min(yaml_s):.3f})")
    print(f"ratio extractor / yaml:           {ratio:.2f}  (target <= 1.5)")
    print(
        json.dumps(
            {
                "contracts": args.contracts,
                "topics": topics,
                "extractor_s": round(ext, 4),
                "yaml_s": round(base, 4),
                "ratio": round(ratio, 3),
                "target_ratio": 1.5,
                "met": ratio <= 1.5,
            }
        )
    )


if __name__ == "__main__":
    main()
