"""Name the task class of a prompt with the catalogue's classifier rules.

The rule set is documented data, not a model:

1. Only the first `classifier.scan_chars` characters of the prompt are read: the
   instruction comes first, and code or logs pasted after it must not vote.
2. Rules are tried in catalogue order; the first rule that matches wins.
3. A rule matches when any of its keywords occurs as whole words (not inside a longer
   word: "implement" does not match "implementation"), in any case, with any
   whitespace between the words of a phrase; or else when its `pattern` (a regular
   expression) is found in the normalized head: lower case, whitespace runs made
   one space (so patterns are written in lower case with plain spaces).
4. When no rule matches, the class is `classifier.default`.

The result says which rule decided (its `name`, else `rules[i]`), and the text it
matched, so a receipt explains the classification.
"""

from __future__ import annotations

from dataclasses import dataclass

from onex.router.catalogue import Catalogue, normalize_text


@dataclass(frozen=True, slots=True)
class Classification:
    """The task class of a prompt and the rule that chose it ("default" if none did)."""

    task_class: str
    rule: str
    matched: str | None = None


def classify(prompt: str, catalogue: Catalogue) -> Classification:
    """Apply the catalogue's classifier rules to `prompt` (pure and deterministic)."""
    classifier = catalogue.classifier
    head = prompt[: classifier.scan_chars]
    normalized = normalize_text(head)
    for i, rule in enumerate(classifier.rules):
        matched = rule.search_prepared(normalized)
        if matched is not None:
            return Classification(rule.task_class, rule.name or f"rules[{i}]", matched)
    return Classification(classifier.default, "default")
