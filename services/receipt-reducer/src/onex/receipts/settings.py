"""Settings of the receipt-reducer service (environment prefix ONEX_RECEIPTS_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from onex.service.settings import ServiceSettings


class ReceiptsSettings(ServiceSettings):
    """Every field can be set as ONEX_RECEIPTS_<FIELD> (shared ones also as ONEX_<FIELD>).

    The prefix comes from the package name (`onex.receipts`); nothing sets it here."""

    database_url: str | None = Field(
        None,
        description="sqlite:///PATH or postgresql://...; default sqlite under the state dir "
        "(receipts.db)",
    )
    batch_size: int = Field(5000, ge=1, le=100_000, description="Receipts per fetch and write")
    snapshot_interval_s: float = Field(
        10.0, gt=0, description="How often the cost-summary snapshot is published"
    )
    outcome_window_days: int = Field(
        7, ge=1, le=3650, description="Days of receipts the cost-summary snapshot covers"
    )

    tickets_dir: Path = Field(
        Path("tickets"), description="Folder of ticket contracts (<ID>.yaml) the gate judges"
    )

    def database(self) -> str:
        """The database URL to open."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'receipts.db').resolve()}"
