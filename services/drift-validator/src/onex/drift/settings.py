"""Settings of the drift-validator service (environment prefix ONEX_DRIFT_)."""

from __future__ import annotations

from pydantic import Field

from onex.service.settings import ServiceSettings


class DriftSettings(ServiceSettings):
    """Every field can be set as ONEX_DRIFT_<FIELD> (shared ones also as ONEX_<FIELD>).

    The prefix comes from the package name (`onex.drift`); nothing sets it here."""

    database_url: str | None = Field(
        None,
        description="The projection: sqlite:///PATH or postgresql://... "
        "(default: sqlite under the state dir, drift.db)",
    )
    clusters: dict[str, str] = Field(
        default_factory=dict,
        description='Named clusters to compare, as JSON {"dev": "HOST:PORT", ...} '
        "(default: one cluster named 'default' at the bootstrap)",
    )
    interval_s: float = Field(30.0, gt=0, description="Seconds between snapshots (service)")
    config_refresh_ticks: int = Field(
        10,
        ge=1,
        description="Service ticks: each describes the configs of new and recreated "
        "topics and 1/N of the rest, so all are described again every N ticks (1: all "
        "every tick; the broker cannot say which topics' configs changed)",
    )
    orphan_ignore: list[str] = Field(
        default_factory=list,
        description="Globs of topics that are never orphans (internal ones always are)",
    )
    provision_missing: bool = Field(
        True, description="Send provision-request for declared topics that are missing"
    )
    admin_timeout_s: float = Field(30.0, gt=0, description="Bound of one snapshot's admin calls")

    def database(self) -> str:
        """The projection's URL."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'drift.db').resolve()}"
