"""The model registry: signed model versions with their cards, and rollouts to sites.

A version is immutable once added: its file is copied under `<data_dir>/models/<name>/
<version>/model.onnx`, hashed, and signed with central's Ed25519 key (the key that signs
clip manifests), so an edge installs only bytes central vouched for. The card (training
data, metrics, whatever the trainer recorded) is kept beside the file as `card.json`.
Each version also carries its class map (model class -> the label rules watch; `null` drops
a class) and its decoder layout (`backend`, as the edge's `detection.backend` names it);
both are signed with the file's hash, and on the edge they win over the file's metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from central.errors import ConflictError, InvalidInputError, NotFoundError
from central.regulation.scope import Scope, in_scope
from central.schema import LockedDb
from central.video.signing import ManifestSigner
from fsv_contract.models import (
    LABEL_PATTERN,
    MODEL_BACKENDS,
    MODEL_NAME_PATTERN,
    InstallModelArgs,
    RollbackModelArgs,
    signed_bytes,
)

MAX_MODEL_BYTES = 1 << 30
_NAME = re.compile(MODEL_NAME_PATTERN)
_LABEL = re.compile(LABEL_PATTERN)
# A model's own class names (NanoDet's COCO names have spaces): printable, no comma.
MODEL_CLASS = re.compile(r"^[^\x00-\x1f,]{1,64}$")


def check_class_map(
    classes: list[str], class_map: dict[str, str | None] | None, backend: str
) -> dict[str, str | None]:
    """The class map of a new version, checked against its class names and the backend;
    InvalidInputError naming what is wrong. Without a map, every class is its own label."""
    if backend not in MODEL_BACKENDS:
        raise InvalidInputError(f"backend {backend!r}: one of {', '.join(MODEL_BACKENDS)}")
    bad = [c for c in classes if not MODEL_CLASS.match(c) or c != c.strip()]
    if not classes or bad or len(set(classes)) != len(classes):
        raise InvalidInputError(
            f"classes: give distinct class names, 1-64 characters without commas (bad: {bad})"
        )
    if not class_map:
        unusable = [c for c in classes if not _LABEL.match(c)]
        if unusable:
            raise InvalidInputError(
                f"class map: {unusable} are not labels (lower_case_words); map them, "
                "e.g. --class-map 'Fall=person,cell phone=phone_use'"
            )
        return {c: c for c in classes}
    unknown = sorted(set(class_map) - set(classes))
    if unknown:
        raise InvalidInputError(f"class map: {unknown} are not among the classes {classes}")
    for model_class, label in class_map.items():
        if label is not None and not _LABEL.match(label):
            raise InvalidInputError(
                f"class map: label {label!r} of {model_class!r} is not lower_case_words"
            )
    if not any(label is not None for label in class_map.values()):
        raise InvalidInputError("class map: every class is dropped; map at least one to a label")
    return dict(class_map)


class ModelRegistry:
    """Model versions and rollouts in central's database, files under `root`."""

    def __init__(
        self,
        ldb: LockedDb,
        root: Path,
        signer: ManifestSigner,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ldb = ldb
        self.root = root
        self._signer = signer
        self._clock = clock

    def add(
        self,
        source: Path,
        name: str,
        version: str,
        classes: list[str],
        card: dict[str, Any],
        uploaded_by: str,
        class_map: dict[str, str | None] | None = None,
        backend: str = "onnx",
    ) -> dict[str, Any]:
        """Register a new version of `name` from the file `source`; returns its row.

        `class_map` maps the model's classes to rule labels (default: each class is its
        own label); `backend` is the decoder layout the edge loads it with."""
        for what, value in (("name", name), ("version", version)):
            if not _NAME.match(value):
                raise InvalidInputError(f"model {what} {value!r}: use [a-z0-9_.-], max 64")
        mapped = check_class_map(classes, class_map, backend)
        try:
            size = source.stat().st_size
        except OSError as e:
            raise InvalidInputError(f"cannot read model file {source}: {e}") from e
        if not 0 < size <= MAX_MODEL_BYTES:
            raise InvalidInputError(f"model file {source}: {size} bytes (1 .. {MAX_MODEL_BYTES})")
        if self._row(name, version) is not None:
            raise ConflictError(f"model {name} version {version} exists; versions are immutable")
        folder = self.root / name / version
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".model.onnx.{os.getpid()}.part"
        shutil.copyfile(source, temp)
        sha = _sha256(temp)
        now = self._clock()
        signature = self._signer.sign_bytes(
            signed_bytes(name, version, sha, classes, mapped, backend)
        )
        card = {
            **card,
            "name": name,
            "version": version,
            "sha256": sha,
            "bytes": size,
            "classes": classes,
            "class_map": mapped,
            "backend": backend,
            "uploaded_by": uploaded_by,
            "uploaded_at": now,
        }
        temp.replace(folder / "model.onnx")
        (folder / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        row = {
            "name": name,
            "version": version,
            "sha256": sha,
            "bytes": size,
            "path": str(folder / "model.onnx"),
            "classes": json.dumps(classes),
            "class_map": json.dumps(mapped, ensure_ascii=False),
            "backend": backend,
            "card": json.dumps(card, ensure_ascii=False),
            "key_id": signature.key_id,
            "signature": signature.value,
            "uploaded_by": uploaded_by,
            "uploaded_at": now,
        }
        with self._ldb.transaction() as db:
            db.table("models").insert(row)
        return public_model(row)

    def list_models(self) -> list[dict[str, Any]]:
        """Every version, newest first."""
        with self._ldb.read() as db:
            rows = db.query("select * from models order by uploaded_at desc, name, version")
            return [public_model(dict(r)) for r in rows]

    def get(self, name: str, version: str) -> dict[str, Any]:
        """One version's row (with the stored path); NotFoundError if unknown."""
        row = self._row(name, version)
        if row is None:
            raise NotFoundError(f"model {name} version {version} not found")
        return row

    def install_args(
        self, name: str, version: str, cameras: list[str], shadow: bool = False
    ) -> dict[str, Any]:
        """The `install_model` command's arguments for a version (contract InstallModelArgs)."""
        row = self.get(name, version)
        args = InstallModelArgs(
            name=name,
            version=version,
            sha256=row["sha256"],
            bytes=row["bytes"],
            classes=json.loads(row["classes"]),
            class_map=json.loads(row["class_map"] or "{}"),
            backend=row["backend"] or "onnx",
            key_id=row["key_id"],
            signature=row["signature"],
            cameras=cameras,
            shadow=shadow,
        )
        return args.model_dump(mode="json")

    @staticmethod
    def rollback_args(cameras: list[str], shadow: bool = False) -> dict[str, Any]:
        """The `rollback_model` command's arguments (`shadow`: stop the shadow model)."""
        return RollbackModelArgs(cameras=cameras, shadow=shadow).model_dump(mode="json")

    def record_rollout(
        self,
        request_id: str,
        site_id: str,
        action: str,
        cameras: list[str],
        requested_by: str,
        name: str | None = None,
        version: str | None = None,
    ) -> None:
        """Remember a command sent to a site, to show its progress with the edge's reply."""
        with self._ldb.transaction() as db:
            db.table("model_rollouts").insert(
                {
                    "request_id": request_id,
                    "site_id": site_id,
                    "action": action,
                    "name": name,
                    "version": version,
                    "cameras": json.dumps(cameras),
                    "requested_by": requested_by,
                    "requested_at": self._clock(),
                }
            )

    def site_models(self, scope: Scope, site_id: str) -> dict[str, Any]:
        """A site's rollouts (newest first, with the edge's replies) and each camera's model."""
        with self._ldb.read() as db:
            site = list(db.query("select org_path from sites where id = ?", [site_id]))
            if not site or not in_scope(scope, site[0]["org_path"]):
                raise NotFoundError(f"site {site_id} not found")
            rollouts = [
                _rollout(dict(r))
                for r in db.query(
                    "select r.*, c.ok, c.result, c.error, c.replied_at from model_rollouts r "
                    "left join commands c on c.request_id = r.request_id "
                    "where r.site_id = ? order by r.requested_at desc limit 100",
                    [site_id],
                )
            ]
            beat = list(db.query("select heartbeat from agent_status where site = ?", [site_id]))
            shadow = [
                shadow_day(dict(r))
                for r in db.query(
                    "select * from shadow_days where site = ? order by day desc, camera, model "
                    "limit 200",
                    [site_id],
                )
            ]
        cameras: dict[str, str | None] = {}
        if beat and beat[0]["heartbeat"]:
            for cam in json.loads(beat[0]["heartbeat"]).get("cameras", []):
                cameras[cam["camera"]] = cam.get("model")
        return {"site_id": site_id, "cameras": cameras, "rollouts": rollouts, "shadow": shadow}

    def _row(self, name: str, version: str) -> dict[str, Any] | None:
        with self._ldb.read() as db:
            rows = list(
                db.query("select * from models where name = ? and version = ?", [name, version])
            )
        return dict(rows[0]) if rows else None


def public_model(row: dict[str, Any]) -> dict[str, Any]:
    """A registry row as the API shows it (no server path)."""
    return {
        "name": row["name"],
        "version": row["version"],
        "sha256": row["sha256"],
        "bytes": row["bytes"],
        "classes": json.loads(row["classes"]),
        "class_map": json.loads(row["class_map"] or "{}"),
        "backend": row["backend"] or "onnx",
        "card": json.loads(row["card"]),
        "key_id": row["key_id"],
        "signature": row["signature"],
        "uploaded_by": row["uploaded_by"],
        "uploaded_at": row["uploaded_at"],
    }


def shadow_day(row: dict[str, Any]) -> dict[str, Any]:
    """A day of a shadow model on a camera, with each class's and the overall agreement
    (matched boxes over all boxes either model found)."""
    classes = json.loads(row["classes"])
    for c in classes:
        total = c["matched"] + c["only_current"] + c["only_shadow"]
        c["agreement"] = round(c["matched"] / total, 4) if total else None
    totals = {k: sum(c[k] for c in classes) for k in ("matched", "only_current", "only_shadow")}
    seen = sum(totals.values())
    return {
        "camera": row["camera"],
        "model": row["model"],
        "current": row["current"],
        "day": row["day"],
        "frames": row["frames"],
        "errors": row["errors"],
        "classes": classes,
        **totals,
        "agreement": round(totals["matched"] / seen, 4) if seen else None,
        "updated_at": row["updated_at"],
    }


def _rollout(row: dict[str, Any]) -> dict[str, Any]:
    state = "sent" if row["replied_at"] is None else ("done" if row["ok"] else "failed")
    return {
        "request_id": row["request_id"],
        "action": row["action"],
        "name": row["name"],
        "version": row["version"],
        "cameras": json.loads(row["cameras"]),
        "requested_by": row["requested_by"],
        "requested_at": row["requested_at"],
        "state": state,
        "result": json.loads(row["result"]) if row["result"] else None,
        "error": row["error"],
        "replied_at": row["replied_at"],
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def registry_for(ldb: LockedDb, data_dir: Path) -> ModelRegistry:
    """The registry under `data_dir/models`, signing with central's key in `data_dir`."""
    from central.video.signing import KEY_FILE

    return ModelRegistry(ldb, data_dir / "models", ManifestSigner(data_dir / KEY_FILE))
