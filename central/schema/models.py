"""Migrations of the regulator tables: verdict labels, the model registry and rollouts, sample
frames for labelling."""

from __future__ import annotations

import sqlite_utils


def m011_labels(db: sqlite_utils.Database) -> None:
    """Inspectors' verdicts on alerts as training labels, and each site's class map."""
    db.table("alert_labels").create(
        {
            "alert_id": str,
            "site_id": str,
            "verdict": str,
            "boxes": str,
            "user_id": int,
            "username": str,
            "labelled_at": float,
        },
        pk="alert_id",
        not_null={"alert_id", "site_id", "verdict", "boxes", "labelled_at"},
        foreign_keys=[("alert_id", "alerts", "id")],
    )
    db.table("site_class_maps").create(
        {"site_id": str, "classes": str, "updated_by": str, "updated_at": float},
        pk="site_id",
        not_null={"site_id", "classes", "updated_at"},
    )


def m012_models(db: sqlite_utils.Database) -> None:
    """The model registry (signed versions with their cards) and rollouts to sites."""
    db.table("models").create(
        {
            "name": str,
            "version": str,
            "sha256": str,
            "bytes": int,
            "path": str,
            "classes": str,
            "card": str,
            "key_id": str,
            "signature": str,
            "uploaded_by": str,
            "uploaded_at": float,
        },
        pk=("name", "version"),
        not_null={"sha256", "bytes", "path", "classes", "card", "signature", "uploaded_at"},
    )
    db.table("model_rollouts").create(
        {
            "request_id": str,
            "site_id": str,
            "action": str,
            "name": str,
            "version": str,
            "cameras": str,
            "requested_by": str,
            "requested_at": float,
        },
        pk="request_id",
        not_null={"site_id", "action", "cameras", "requested_at"},
    )
    db.table("model_rollouts").create_index(["site_id", "requested_at"])


def m015_samples(db: sqlite_utils.Database) -> None:
    """Sample frames asked of the edges for labelling, the frames stored, and their labels."""
    db.table("sample_requests").create(
        {
            "batch_id": str,
            "request_id": str,
            "site_id": str,
            "camera_id": str,
            "org_path": str,
            "count": int,
            "mode": str,
            "requested_by": str,
            "requested_at": float,
        },
        pk="batch_id",
        not_null={"request_id", "site_id", "camera_id", "org_path", "count", "requested_at"},
    )
    db.table("sample_frames").create(
        {
            "batch_id": str,
            "name": str,
            "site_id": str,
            "camera_id": str,
            "org_path": str,
            "ts": float,
            "sha256": str,
            "stored_at": float,
        },
        pk=("batch_id", "name"),
        not_null={"site_id", "camera_id", "org_path", "ts", "sha256", "stored_at"},
    )
    db.table("sample_frames").create_index(["org_path", "ts"])
    db.table("sample_labels").create(
        {
            "batch_id": str,
            "name": str,
            "site_id": str,
            "verdict": str,
            "boxes": str,
            "user_id": int,
            "username": str,
            "labelled_at": float,
        },
        pk=("batch_id", "name"),
        not_null={"site_id", "verdict", "boxes", "labelled_at"},
    )


def m018_model_class_map(db: sqlite_utils.Database) -> None:
    """Each model version's class map (model class -> rule label) and decoder layout; a
    version added before them has neither (NULL: every class its own name, `onnx`)."""
    db.table("models").add_column("class_map", str)
    db.table("models").add_column("backend", str)
