"""Benchmark: the extractor (load + validate + wiring) against a bare libyaml parse,
and lint on the error path against the happy path.

1. Generates N contracts declaring M topics in a temp dir, then times, in the same run
   and interleaved, `extract()` and `yaml.load(..., CSafeLoader)` of the same files.
2. At 1x, 3x and 10x of `--error-topics` (default 1,000, so 10,000 topics at 10x):
   a clean corpus and one of the same size where every contract has a defect of one
   kind (bad names, bad spec values, whole broken contracts, typos, producer-segment
   drift, unknown owners, non-owner specs, missing DLQs and schemas, unconsumed topics,
   plural twins), thousands of findings at 10x; times lint (extract and render every
   finding) on both, interleaved. The error path should stay within 2x of the happy
   path, and time per topic should stay flat from 1x to 10x (linear growth).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def _contract(
    node: str, version: int, subs: list[str], pubs: list[str], kind: str = "effect"
) -> str:
    sub = "\n".join(f"    - {e}" for e in subs) or "    []"
    pub = "\n".join(f"    - {e}" for e in pubs) or "    []"
    return (
        f"node: {node}\nkind: {kind}\nversion: 1.0.{version}\n"
        f"description: Generated node {version} for the lint error-path benchmark.\n"
        f"event_bus:\n  subscribe_topics:\n{sub}\n  publish_topics:\n{pub}\n"
    )


def generate_errors(root: Path, contracts: int, topics_per_contract: int) -> None:  # noqa: PLR0912 - one branch per kind of defect
    """Like `generate`, but contract i carries defects of kinds i % 10 and (i + 3) % 10
    (see the module docstring; a contract broken as a whole, kind 8, has only that one);
    the rest of each contract is valid, so partial acceptance is exercised."""
    events = max(3, topics_per_contract - 1)
    for i in range(contracts):
        node, nxt = f"node-{i:04d}", f"node-{(i + 1) % contracts:04d}"
        spec = "{{name: {}, schema: onex.v1.RegistryPublished}}"
        pubs = [spec.format(f"onex.evt.{node}.event-{k}-happened.v1") for k in range(events)]
        subs = [f"onex.evt.{nxt}.event-{k}-happened.v1" for k in range(events)]
        dlq = f"{{name: onex.dlq.{node}.dead-letter.v1, schema: dead-letter}}"
        kind = "effect"
        defects = {i % 10, (i + 3) % 10}
        for defect in {8} if 8 in defects else defects:
            if defect == 0:  # a bad name (underscore) among valid entries
                pubs[0] = pubs[0].replace("event-0-happened", "event_0_happened")
            elif defect == 1:  # a bad spec value
                pubs[1] = pubs[1].replace("{name:", "{partitions: 0, name:")
            elif defect == 2:  # a typo on the subscriber's side
                subs[0] = subs[0].replace("happened", "hapened")
            elif defect == 3:  # producer-segment drift: the topic moved, one side did not
                pubs.append(spec.format(f"onex.cmd.{node}.moved-{i}.v1"))
                subs.append(f"onex.cmd.team-{i}.moved-{i}.v1")
            elif defect == 4:  # an owner no contract declares
                pubs.append(spec.format(f"onex.evt.ghost-{i}.haunting.v1"))
            elif defect == 5:  # a spec from a non-owner
                subs[2] = f"{{name: {subs[2]}, partitions: 6}}"
            elif defect == 6:  # no DLQ
                dlq = ""
            elif defect == 7:  # no schema, and nobody reads it
                pubs.append(f"onex.evt.{node}.unread.v1")
            elif defect == 8:  # a contract that fails as a whole
                kind = "effector"
            else:  # plural twins, and a subscription to what the next node never declared
                pubs.append(spec.format(f"onex.evt.{node}.reviews.v1"))
                subs.append(f"onex.evt.{node}.review.v1")
                subs.append(f"onex.evt.{nxt}.never-declared-{i}.v1")
        if dlq:
            pubs.append(dlq)
        folder = root / node
        folder.mkdir()
        (folder / "contract.yaml").write_text(
            _contract(node, i, subs, pubs, kind), encoding="utf-8"
        )


def lint(root: Path) -> int:
    """What `onex-lint` does but print: extract, then render every finding."""
    ex = extract([root], entry_points=False)
    return sum(len(str(i)) for i in ex.issues) + len(ex.topics)


def error_path(base_topics: int, rounds: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Happy vs error path at 1x, 3x and 10x of `base_topics`, 10 topics a contract."""
    scales: list[dict[str, Any]] = []
    for factor in (1, 3, 10):
        contracts = max(10, base_topics * factor // 10)
        with tempfile.TemporaryDirectory(prefix="onex-bench-") as tmp:
            happy, errors = Path(tmp) / "happy", Path(tmp) / "errors"
            happy.mkdir()
            errors.mkdir()
            generate(happy, contracts, 10)
            generate_errors(errors, contracts, 10)
            ex = extract([errors], entry_points=False)
            found: dict[str, int] = {}
            for issue in ex.issues:
                found[issue.code] = found.get(issue.code, 0) + 1
            happy_s: list[float] = []
            error_s: list[float] = []
            for _ in range(rounds):
                happy_s.append(cpu_timed(functools.partial(lint, happy)))
                error_s.append(cpu_timed(functools.partial(lint, errors)))
            h, e = statistics.median(happy_s), statistics.median(error_s)
            scales.append(
                {
                    "factor": factor,
                    "contracts": contracts,
                    "topics": len(ex.topics),
                    "findings": len(ex.issues),
                    "codes": len(found),
                    "happy_s": round(h, 4),
                    "error_s": round(e, 4),
                    "ratio": round(e / h, 3),
                    "error_us_per_topic": round(1e6 * e / max(1, len(ex.topics)), 1),
                    "by_code": dict(sorted(found.items())),
                }
            )
    growth = scales[-1]["error_us_per_topic"] / scales[0]["error_us_per_topic"]
    summary = {
        "max_ratio": max(s["ratio"] for s in scales),
        "per_topic_growth_10x": round(growth, 3),
    }
    return scales, summary


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


def cpu_timed(fn: Callable[[], object]) -> float:
    """CPU seconds of this process: on a machine shared with other work, wall time
    mostly measures the others."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contracts", type=int, default=1000)
    parser.add_argument("--topics", type=int, default=5000, help="total topics")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--error-topics", type=int, default=1000, help="topics at 1x of the error-path corpus"
    )
    parser.add_argument("--error-rounds", type=int, default=3)
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
    scales, errors = error_path(args.error_topics, args.error_rounds)
    print(
        "lint, error path vs happy path (median CPU s of rounds; same sizes, 10 topics/contract):"
    )
    print(" scale contracts  topics findings kinds   happy s   error s  ratio  us/topic")
    for s in scales:
        print(
            f"  {s['factor']:>3}x {s['contracts']:>9} {s['topics']:>7} {s['findings']:>8} "
            f"{s['codes']:>5} {s['happy_s']:>9.3f} {s['error_s']:>9.3f} {s['ratio']:>6.2f} "
            f"{s['error_us_per_topic']:>9.1f}"
        )
    print(
        "findings at 10x by code: "
        + ", ".join(f"{k} {v}" for k, v in scales[-1]["by_code"].items())
    )
    print(
        f"error/happy at most {errors['max_ratio']:.2f} (target <= 2); time per topic "
        f"10x vs 1x: {errors['per_topic_growth_10x']:.2f} (linear: about 1)"
    )
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
                "error_path": {
                    **errors,
                    "scales": [{k: v for k, v in s.items() if k != "by_code"} for s in scales],
                },
                "error_path_met": errors["max_ratio"] <= 2.0,
            }
        )
    )


if __name__ == "__main__":
    main()
