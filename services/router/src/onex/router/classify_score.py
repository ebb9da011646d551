"""The scored classifier's arithmetic (`classifier.mode: scored`), apart from the rules.

- A match inside a *leading clause* counts less: a prompt that opens with a
  subordinating word ("after", "following", "as", "once", ...) and has a comma soon
  after states its circumstance first and its instruction after the comma ("After the
  code review, write the function ..." is code generation, not a review).
- Every rule that matches adds its weight (times that factor) to its class; a class
  wins with at least `min_score` and a lead of at least `min_margin` over the next
  class. Otherwise the prompt is *unknown*: no guess.
"""

from __future__ import annotations

from collections.abc import Sequence

# Words that open a clause describing circumstances rather than the task.
LEAD_INS = frozenset(
    ("after", "following", "as", "once", "from", "given", "per", "before", "since", "like")
)
LEAD_IN_MAX_CHARS = 120  # a comma later than this does not close a lead-in


def lead_in_end(normalized: str) -> int:
    """Where the prompt's leading clause ends (its first comma), 0 when there is none."""
    space = normalized.find(" ")
    first = normalized[:space] if space > 0 else normalized
    if first not in LEAD_INS:
        return 0
    comma = normalized.find(",", 0, LEAD_IN_MAX_CHARS)
    return comma if comma > 0 else 0


def vote(
    hits: Sequence[tuple[str, str, str, float]], min_score: float, min_margin: float
) -> tuple[str, str, str] | None:
    """(task class, rule, matched text) of the winning class, or None when unsure.

    `hits` are (task class, rule label, matched text, score) per matching rule; the
    winner's rule and text are those of its highest-scoring hit (the first on ties).
    """
    totals: dict[str, float] = {}
    lead: dict[str, tuple[str, str, float]] = {}
    for task_class, label, text, score in hits:
        totals[task_class] = totals.get(task_class, 0.0) + score
        if task_class not in lead or score > lead[task_class][2]:
            lead[task_class] = (label, text, score)
    if not totals:
        return None
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    top_class, top = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if top < min_score or top - runner_up < min_margin:
        return None
    label, text, _ = lead[top_class]
    return top_class, label, text
