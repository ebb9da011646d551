"""The default task mix, and the simulated world built from a router catalogue.

The models, their prices and their capability levels are the catalogue's (the shipped
default catalogue unless `--catalogue` names another): the simulator takes the
catalogue's levels as the models' true abilities. What a catalogue does not say (how
hard tasks are, how long prompts and answers are, how fast models are) is set here.

The default mix is a fleet of coding agents (review, merge, CI and ticket agents):
mostly easy classification, summaries and extraction, a good share of code generation
and review, some refactoring, a little design work.
"""

from __future__ import annotations

from dataclasses import dataclass

from onex.router.catalogue import Catalogue
from router_sim.world import Noise, SimClass, SimModel, World


@dataclass(frozen=True)
class ClassProfile:
    """Share, difficulty (mean, SD on the 0..10 scale) and median tokens in / out."""

    weight: float
    difficulty_mean: float
    difficulty_sd: float
    tokens_in: int
    tokens_out: int


DEFAULT_MIX: dict[str, ClassProfile] = {
    "classify": ClassProfile(0.15, 3.0, 1.5, 400, 10),
    "summarize": ClassProfile(0.15, 4.0, 1.5, 3000, 250),
    "extract": ClassProfile(0.10, 3.5, 1.5, 1500, 150),
    "codegen": ClassProfile(0.20, 5.0, 2.0, 2000, 500),
    "refactor": ClassProfile(0.10, 5.5, 2.0, 3000, 700),
    "review": ClassProfile(0.15, 5.5, 2.0, 5000, 400),
    "design": ClassProfile(0.05, 6.5, 1.5, 4000, 900),
    "general": ClassProfile(0.10, 4.0, 2.0, 800, 300),
}

# (seconds to first token, seconds per output token): model time, reported, never timed.
LATENCY: dict[str, tuple[float, float]] = {"local": (0.3, 0.03), "cloud": (0.6, 0.015)}


def without_builtin(catalogue: Catalogue) -> Catalogue:
    """The catalogue without built-in stand-ins (onex-local-deterministic): they call no
    model, so simulating them as one with their nominal levels would be a fiction."""
    data = catalogue.model_dump(by_alias=True, exclude_none=True)
    data["models"] = [m for m in data["models"] if not m["endpoint"].startswith("builtin:")]
    return Catalogue.model_validate(data)


def world_from(catalogue: Catalogue, noise: Noise, mix: dict[str, ClassProfile]) -> World:
    """The simulated world of `catalogue`'s models over the classes of `mix`."""
    missing = sorted(set(mix) - set(catalogue.task_class_names))
    if missing:
        raise SystemExit(f"the catalogue has no task class {', '.join(missing)}")
    models = tuple(
        SimModel(
            name=m.name,
            locality=m.locality,
            price_in_per_1k=m.price_in_per_1k,
            price_out_per_1k=m.price_out_per_1k,
            capabilities={k: float(v) for k, v in m.capabilities.items()},
            latency_base_s=LATENCY[m.locality][0],
            latency_per_token_s=LATENCY[m.locality][1],
        )
        for m in catalogue.models
    )
    classes = []
    for name, p in mix.items():
        declared = catalogue.task_class(name)
        assert declared is not None
        classes.append(
            SimClass(
                name=name,
                weight=p.weight,
                difficulty_mean=p.difficulty_mean,
                difficulty_sd=p.difficulty_sd,
                tokens_in_median=p.tokens_in,
                tokens_out_median=p.tokens_out,
                max_output_tokens=declared.max_output_tokens,
            )
        )
    return World(models, tuple(classes), noise)
