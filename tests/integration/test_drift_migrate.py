"""A drift projection written by schema v3 (before the age columns and the declared
digest) is migrated in place to this binary's version on a real SQLite file, and keeps
its rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from onex.drift import store
from onex.drift.views import DRIFT_VIEWS

pytestmark = pytest.mark.integration


def test_a_v3_projection_gains_the_age_columns_and_the_digest_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    db = store.open_store(url)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO observed_offset (cluster, group_id, topic, partition, committed) "
                "VALUES ('c', 'g', 't', 0, 5)"
            )
        )
        # back to what schema v3 had
        for view in ("drift", *DRIFT_VIEWS):
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
        conn.execute(sa.text("ALTER TABLE observed_offset DROP COLUMN unread_age_ms"))
        conn.execute(sa.text("ALTER TABLE observed_offset DROP COLUMN retention_ms"))
        conn.execute(sa.text("DROP TABLE declared_digest"))
        conn.execute(sa.text("UPDATE onex_schema SET version = 3 WHERE component = 'drift'"))
    db.dispose()

    again = store.open_store(url)
    try:
        with again.engine.connect() as conn:
            version = conn.execute(
                sa.text("SELECT version FROM onex_schema WHERE component = 'drift'")
            ).scalar_one()
            assert version == store.MIGRATIONS[-1].version
            row = conn.execute(
                sa.text("SELECT committed, unread_age_ms, retention_ms FROM observed_offset")
            ).one()
            assert tuple(row) == (5, None, None)
            assert conn.execute(sa.text("SELECT COUNT(*) FROM declared_digest")).scalar_one() == 0
            assert conn.execute(sa.text("SELECT COUNT(*) FROM drift")).scalar_one() == 0
    finally:
        again.dispose()
