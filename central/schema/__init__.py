"""Tables of the regulator side (organisations, users, alerts, push, audit, public links).

They live in central's one database beside the ingest tables, under their own migration set
so the two sets evolve independently. The migrations live by area (regulation, alerts, health,
models) and are registered here in the order they were written, which is the order they run
in; a new one goes at the end of MIGRATIONS. Every row that belongs to an organisation carries that
organisation's materialised path (`org_path`), which is what scope.py filters on.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Protocol

import sqlite_utils

from central.schema.alerts import (
    m002_alerts,
    m003_push_audit_public,
    m007_push_jobs,
    m009_first_clip,
    m013_alert_frame_and_model,
)
from central.schema.health import (
    CAMERA_RECORDING_UPSERT,
    RECORDING_GAP_S,
    m004_health_history,
    m006_scale,
    m010_report_indexes,
    m016_camera_recording,
    m022_alert_days,
    m023_alert_days_report_index,
    m024_health_days,
)
from central.schema.models import m011_labels, m012_models, m015_samples, m018_model_class_map
from central.schema.nodes import m019_node_leases, m020_login_failures, m021_shared_limits
from central.schema.regulation import (
    m001_orgs_users,
    m005_camera_reported,
    m008_api_tokens,
    m014_public_video_inspections,
    m017_admin_indexes,
    m025_public_link_token_digests,
)
from central.storage.db import apply_migrations as db_apply_migrations

migrations = sqlite_utils.Migrations("central.regulators")


class LockedDb(Protocol):
    """A sqlite-utils database shared between threads under one lock."""

    db: sqlite_utils.Database
    lock: threading.RLock

    def transaction(self) -> AbstractContextManager[sqlite_utils.Database]:
        """Hold the lock and run the block in one transaction."""
        ...

    def read(self) -> AbstractContextManager[sqlite_utils.Database]:
        """A read-only connection that never holds the write lock."""
        ...


def apply_migrations(ldb: LockedDb) -> None:
    """Create or upgrade the regulator tables."""
    with ldb.lock:
        db_apply_migrations(migrations, ldb.db)


# Every migration, in the order it was written (= the order it runs in); never reorder.
MIGRATIONS = (
    m001_orgs_users,
    m002_alerts,
    m003_push_audit_public,
    m004_health_history,
    m005_camera_reported,
    m006_scale,
    m007_push_jobs,
    m008_api_tokens,
    m009_first_clip,
    m010_report_indexes,
    m011_labels,
    m012_models,
    m013_alert_frame_and_model,
    m014_public_video_inspections,
    m015_samples,
    m016_camera_recording,
    m017_admin_indexes,
    m018_model_class_map,
    m019_node_leases,
    m020_login_failures,
    m021_shared_limits,
    m022_alert_days,
    m023_alert_days_report_index,
    m024_health_days,
    m025_public_link_token_digests,
)
for _migration in MIGRATIONS:
    migrations(name=_migration.__name__)(_migration)

__all__ = [
    "CAMERA_RECORDING_UPSERT",
    "MIGRATIONS",
    "RECORDING_GAP_S",
    "LockedDb",
    "apply_migrations",
    "m016_camera_recording",
    "migrations",
]
