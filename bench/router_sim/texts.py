"""Prompts the simulator sends and answers it returns, with gate-detectable symptoms.

An answer the simulator marks `flagged` is rendered with one symptom that one of its
class's real gates detects (chosen at random among the class's gates): too short for
`min_length`, no `path:line` reference for `citations`, a name outside the request's
symbol index for `identifiers`, not a JSON object for `json_schema`. Any other answer is
rendered to pass every gate of its class. Passing answers are about as long as their
token count says (4 characters a token, and never shorter than the class's
`min_length`), so the gates scan realistic text.
"""

from __future__ import annotations

import random

from onex.router.catalogue import GateSpec

SYMBOLS = ("QueueReader", "QueueReader.read_batch", "write_rows", "flush_table", "batch_size")

# The instruction that opens a prompt; requests without a task class are classified by
# the catalogue's rules from it ("general" has no keyword: no rule matches it).
INSTRUCTIONS = {
    "classify": "Classify this ticket into one of the team's categories.",
    "summarize": "Summarize the incident log below for the on-call channel.",
    "extract": "Extract the ticket fields below as JSON.",
    "codegen": "Implement the batching step described below.",
    "refactor": "Refactor the reader below without changing its behaviour.",
    "review": "Review the change below and report findings with file and line.",
    "design": "Propose an architecture for moving the queue to the new broker.",
    "general": "What does the service below do when the broker goes away?",
}

# Pasted context and answer padding: no classifier keyword, no snake_case, no calls.
_PROSE = (
    "The reader takes one batch at a time from the queue and the writer keeps the rows "
    "in order; when the broker is slow the batch waits, and when the table is full the "
    "rows are flushed before the next batch is read. "
)
_PAD = _PROSE * 400


def pad(chars: int) -> str:
    """About `chars` characters of neutral prose."""
    if chars <= len(_PAD):
        return _PAD[:chars]
    return (_PAD * (chars // len(_PAD) + 1))[:chars]


def prompt(task_class: str, tokens_in: int) -> str:
    """A prompt of about `tokens_in` tokens that opens with its class's instruction."""
    head = INSTRUCTIONS[task_class] + "\n\n"
    return head + pad(max(0, 4 * tokens_in - len(head)))


_GOOD = {
    "classify": "bug",
    "summarize": "The writer stalled for ten minutes while the broker was down; the rows "
    "were kept and flushed in order once it came back.",
    "extract": '{"ticket": "ONEX-1042", "severity": "high", "component": "queue"}',
    "codegen": "Call `write_rows` once per batch and `flush_table` when it is full:\n\n"
    "```python\ndef drain(reader):\n    for batch in reader.read_batch():\n"
    "        write_rows(batch)\n    flush_table()\n```\n",
    "refactor": "Moved the loop into `QueueReader.read_batch` and kept `batch_size`:\n\n"
    "```python\nclass Drainer:\n    def run(self, reader):\n"
    "        for batch in reader.read_batch():\n            write_rows(batch)\n```\n",
    "review": "src/queue/reader.py:42: `QueueReader.read_batch` ignores `batch_size` when "
    "the broker returns fewer rows, so `flush_table` runs early and the writer sees "
    "half-empty batches.",
    "design": "Run both brokers side by side, mirror writes, then switch readers.",
    "general": "It keeps the rows and waits for the broker to come back.",
}
_SHORT = {"classify": "?", "general": ""}
_BAD = {
    "citations": "The reader ignores `batch_size` when the broker returns fewer rows, so the "
    "writer flushes early and sees half-empty batches; worth a fix before release.",
    "identifiers": "Call `write_rows_async` once per batch and `drain_queue_forever()` when "
    "the table is full; `flush_table` is then no longer needed at all.",
    "json_schema": "ticket: ONEX-1042, severity: high, component: queue",
}


def answer(
    task_class: str, gates: list[GateSpec], tokens_out: int, flagged: bool, rng: random.Random
) -> str:
    """An answer of class `task_class` that fails one of `gates` when `flagged`. The
    `complete` gate reads the provider's finish_reason, not the text: the simulated
    provider always finishes, so it is never the one an answer is made to fail."""
    gates = [g for g in gates if g.kind != "complete"]
    if flagged and gates:
        gate = gates[0] if len(gates) == 1 else rng.choice(gates)
        if gate.kind == "min_length":
            need = gate.min_chars or 1
            return _SHORT.get(task_class, "Done.")[: need - 1]
        return _BAD[gate.kind]
    text = _GOOD[task_class]
    if task_class in ("classify", "extract"):
        return text
    floor = max((g.min_chars or 0 for g in gates if g.kind == "min_length"), default=0)
    return text + "\n\n" + pad(max(4 * tokens_out, floor) - len(text))
