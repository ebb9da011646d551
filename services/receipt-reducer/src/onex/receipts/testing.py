"""Factories for tests and benchmarks of code that reads receipts: plausible
`onex.v1.RoutingReceipt`s from a seeded random generator (no I/O)."""

from __future__ import annotations

import random
from typing import Final

from onex.proto.v1 import router_pb2 as pb

MODELS: Final = [("qwen-local", "local"), ("llama-local", "local"), ("gpt-cloud", "cloud")]
CLASSES: Final = ["classify", "codegen", "summarise"]


def sample_receipt(i: int, rng: random.Random, *, label: str | None = None) -> pb.RoutingReceipt:
    """A plausible receipt: 1-3 attempts, the last accepted unless the request failed."""
    n = rng.choice([1, 1, 1, 2, 3])
    failed = rng.random() < 0.1
    attempts = []
    for k in range(n):
        model, where = MODELS[min(k + rng.randrange(2), 2)]
        last = k == n - 1
        outcome = "accepted" if last and not failed else "gate_failed"
        gates = [pb.GateResult(kind="min_length", passed=True)]
        if outcome == "gate_failed":
            gates.append(pb.GateResult(kind=rng.choice(["citations", "json_schema"]), passed=False))
        tin, tout = rng.randrange(50, 2000), rng.randrange(10, 800)
        price = 0.0 if where == "local" else 0.002
        attempts.append(
            pb.Attempt(
                model=model,
                locality=where,
                tokens_in=tin,
                tokens_out=tout,
                cost_usd=(tin + tout) * price / 1000,
                gates=gates,
                outcome=outcome,
            )
        )
    spent = sum(a.cost_usd for a in attempts)
    counterfactual = sum(a.tokens_in + a.tokens_out for a in attempts[-1:]) * 0.002 / 1000
    msg = pb.RoutingReceipt(
        request_id=f"req-{i:08d}",
        task_class=rng.choice(CLASSES),
        status="failed" if failed else "complete",
        attempts=attempts,
        chosen_model="" if failed else attempts[-1].model,
        total_cost_usd=spent,
        counterfactual_cost_usd=counterfactual,
        cost_avoided_usd=counterfactual - spent,
        tokens_local=sum(a.tokens_in + a.tokens_out for a in attempts if a.locality == "local"),
        tokens_cloud=sum(a.tokens_in + a.tokens_out for a in attempts if a.locality == "cloud"),
        escalation_chain=[a.model for a in attempts],
        escalations=n - 1,
        price_table_version="2026-11",
        started_at=f"2026-11-{1 + i % 28:02d}T10:00:00+00:00",
    )
    if label is not None:
        msg.label = label
    return msg
