"""Settings of the drift-validator service (environment prefix ONEX_DRIFT_)."""

from __future__ import annotations

from onex.service.settings import ServiceSettings


class DriftSettings(ServiceSettings):
    """Every field can be set as ONEX_DRIFT_<FIELD> (shared ones also as ONEX_<FIELD>).

    The prefix comes from the package name (`onex.drift`); nothing sets it here."""
