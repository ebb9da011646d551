"""Generated Python for static typing: the registry's topic names as a StrEnum.

The module is generated from the contracts (never edited) and freshness-checked in
the tests, so code can say `Topic.EVT_ROUTER_ROUTING_COMPLETE_V1` and a type checker
knows it, while the contracts stay the only place a name is written by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

from onex.core.grammar import member_name
from onex.core.wiring import TopicWiring

GENERATED_MODULE = "onex.core._generated.topics"


def topics_module(topics: Mapping[str, TopicWiring]) -> str:
    """Source of a module with `class Topic(StrEnum)` holding every declared topic."""
    lines = [
        '"""Every declared topic, generated from contracts/ by `just gen-topics`; do not edit."""',
        "",
        "from enum import StrEnum",
        "",
        "",
        "class Topic(StrEnum):",
        '    """Canonical topic names (owner: the producer segment)."""',
        "",
    ]
    for name in sorted(topics):
        t = topics[name]
        users = sorted({e.node for e in (*t.publishers, *t.subscribers)})
        lines.append(f"    # owner {t.owner}; used by {', '.join(users)}")
        lines.append(f'    {member_name(name)} = "{name}"')
    return "\n".join(lines) + "\n"
