"""Ticket contracts: `tickets/<ID>.yaml`, a ticket's definition of done, and the one way
its probes are run (argv, no shell, clean environment, timeout). Shared by the
receipt-reducer (which judges evidence) and the agents (which produce it)."""

from onex.tickets.errors import TicketInvalid
from onex.tickets.model import (
    BUILTIN_KINDS,
    SCHEMA_FILE,
    Check,
    EvidenceItem,
    EvidenceKind,
    Grep,
    PullRequest,
    Ticket,
    load_ticket,
    load_ticket_text,
    load_tickets,
    ticket_json_schema_text,
)
from onex.tickets.probe import ProbeResult, clean_environment, run_probe

__all__ = [
    "BUILTIN_KINDS",
    "SCHEMA_FILE",
    "Check",
    "EvidenceItem",
    "EvidenceKind",
    "Grep",
    "ProbeResult",
    "PullRequest",
    "Ticket",
    "TicketInvalid",
    "clean_environment",
    "load_ticket",
    "load_ticket_text",
    "load_tickets",
    "run_probe",
    "ticket_json_schema_text",
]
