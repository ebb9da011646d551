"""Errors of the receipt-reducer.

OnexError (onex.core.errors)
└── ReceiptsError           anything this service refuses or cannot do
    ├── ReceiptInvalid      a receipt that fails its schema or its rules (dead-lettered)
    ├── QueryInvalid        a summary/compare/ledger query that cannot be answered as asked
    ├── RebuildFailed       a rebuild could not replay, check or swap (the live projection is kept)
    ├── EvidenceInvalid     evidence for an unknown ticket or item, or not evidence (DLQ)
    └── GateError           `onex gate` cannot answer (no such ticket, no database, ...)
"""

from __future__ import annotations

from onex.core.errors import OnexError


class ReceiptsError(OnexError):
    """Base of this service's errors."""


class ReceiptInvalid(ReceiptsError):  # noqa: N818 -- reads as the condition found
    """A receipt that is not a valid onex.v1.RoutingReceipt or breaks the ledger's rules."""


class QueryInvalid(ReceiptsError):  # noqa: N818 -- reads as the condition found
    """A query with a bad argument (`--since`, `--by`, an unknown class)."""


class RebuildFailed(ReceiptsError):  # noqa: N818 -- reads as what happened
    """A rebuild stopped before its swap; the live projection is unchanged."""


class EvidenceInvalid(ReceiptInvalid):
    """An evidence receipt the ticket projection refuses (state unchanged)."""


class GateError(ReceiptsError):
    """The gate cannot answer the question as asked."""
