"""`central-server dataset export`, `model add|list|public-key` and `train`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from central.config import load_config
from central.models.dataset import DEFAULT_LICENCE, export_dataset, parse_classes
from central.schema import apply_migrations
from central.storage.db import CentralDatabase
from fsv_contract.models import MODEL_BACKENDS

DEFAULT_CONFIG = "/etc/central/central.yaml"


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `dataset` sub-command and its actions."""
    p = subparsers.add_parser(
        "dataset", help="training datasets from the inspectors' labelled alerts"
    )
    actions = p.add_subparsers(dest="dataset_action", required=True, metavar="ACTION")
    e = actions.add_parser(
        "export",
        help="write an ultralytics (YOLO) dataset of labelled alert images",
        description="Write images/{train,val}, labels/{train,val}, data.yaml and "
        "manifest.json (counts per class, each image's provenance) into OUT. Train and "
        "validation are split by site, camera and UTC day.",
    )
    e.add_argument("--classes", required=True, help="class names in index order: a,b,c")
    e.add_argument("--out", type=Path, required=True, help="a new (or empty) folder")
    e.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    e.add_argument(
        "--val-fraction", type=float, default=0.2, help="share of camera-days in validation"
    )
    e.add_argument("--seed", default="fsv", help="seed of the split (same seed, same split)")
    e.add_argument("--licence", default=DEFAULT_LICENCE, help="licence recorded per image")
    _add_model_parsers(subparsers)
    t = subparsers.add_parser(
        "train",
        help="train a detector on an exported dataset (offline ultralytics), export ONNX",
        description="Writes OUT/model.onnx and OUT/card.json (dataset, settings, validation "
        "precision/recall/mAP50 per class). Register it with `model add OUT/model.onnx "
        "--card OUT/card.json`. Needs the `ultralytics` extra; downloads nothing.",
    )
    t.add_argument("--dataset", type=Path, required=True, help="a `dataset export` folder")
    t.add_argument(
        "--base", default=None, help="base model file on disk (default: from scratch, yolov8n)"
    )
    t.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    t.add_argument("--imgsz", type=int, default=320, help="image size (default 320)")
    t.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    t.add_argument("--device", default=None, help="cpu, or a GPU index (default: GPU if any)")
    t.add_argument("--out", type=Path, required=True, help="a new (or empty) folder")


def _add_model_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("model", help="the model registry: add, list, public key")
    actions = p.add_subparsers(dest="model_action", required=True, metavar="ACTION")
    a = actions.add_parser(
        "add",
        help="register a model version (copied, hashed, signed with central's key)",
        description="Versions are immutable: adding an existing name and version fails. "
        "Install it on a site with POST /api/v1/sites/SITE/models/install.",
    )
    a.add_argument("file", type=Path, help="the model file (ONNX)")
    a.add_argument("--name", required=True, help="model name, e.g. canteen-hats")
    a.add_argument("--version", required=True, help="version, e.g. 2026.12.1")
    a.add_argument(
        "--classes",
        help="the model's class names in index order: a,b,c (default: the card's `classes`)",
    )
    a.add_argument(
        "--class-map",
        help="model class -> rule label: 'Fall=person,cell phone=phone_use,chef_hat=' (empty: "
        "dropped); default: the card's `class_map`, else each class is its own label",
    )
    a.add_argument(
        "--backend",
        choices=MODEL_BACKENDS,
        help="decoder layout, as the edge's detection.backend names it: onnx (YOLOv8-style "
        "head), nanodet, ultralytics (default: the card's `backend`, else onnx)",
    )
    a.add_argument("--card", type=Path, help="model card JSON (metrics, dataset, training)")
    a.add_argument("--uploader", default="cli", help="who uploads it (kept in the registry)")
    a.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    r = actions.add_parser(
        "rollout",
        help="install a version on a share of the sites, then the rest; show progress; go back",
        description="--percent P sends install_model to the first P %% of the sites online now "
        "(a heartbeat in the last 90 s; a seeded order: the same sites first every time; "
        "offline sites are left for --rest), --rest to every site not sent this version "
        "yet, --sites a,b to a group. --status prints progress (replies and heartbeats), "
        "--back rolls back every site this rollout installed the version on.",
    )
    r.add_argument("name", help="model name")
    r.add_argument("version", help="model version")
    how = r.add_mutually_exclusive_group(required=True)
    how.add_argument("--percent", type=float, help="share of the sites online now (0-100]")
    how.add_argument("--rest", action="store_true", help="every site not sent it yet")
    how.add_argument("--sites", help="a group of site ids: a,b,c")
    how.add_argument("--status", action="store_true", help="print the rollout's progress")
    how.add_argument("--back", action="store_true", help="roll back the sites that installed it")
    r.add_argument("--shadow", action="store_true", help="install in shadow mode (no alerts)")
    r.add_argument("--by", default="cli", help="who runs the rollout (kept with each command)")
    r.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    ls = actions.add_parser("list", help="list registered versions")
    ls.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    k = actions.add_parser(
        "public-key", help="print central's signing public key (PEM) for edges' models.public_key"
    )
    k.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")


def run_dataset(args: argparse.Namespace) -> int:
    """Export the dataset and print its counts."""
    classes = parse_classes(args.classes)
    config = load_config(args.config)
    database = CentralDatabase(config.database_url)
    try:
        apply_migrations(database)
        result = export_dataset(
            database,
            classes,
            args.out,
            val_fraction=args.val_fraction,
            seed=args.seed,
            licence=args.licence,
        )
    finally:
        database.close()
    print(json.dumps({"out": str(result.out), "counts": result.counts,
                      "skipped": dict(result.skipped)}, indent=2))  # fmt: skip
    return 0


def run_model(args: argparse.Namespace) -> int:
    """Add or list model versions, or print the signing public key."""
    from central.models.registry import registry_for
    from central.video.signing import KEY_FILE, ManifestSigner, public_pem

    config = load_config(args.config)
    if args.model_action == "public-key":
        signer = ManifestSigner(config.data_dir / KEY_FILE)
        print(public_pem(signer.public_key).decode(), end="")
        return 0
    database = CentralDatabase(config.database_url)
    try:
        apply_migrations(database)
        registry = registry_for(database, config.data_dir)
        if args.model_action == "list":
            print(json.dumps(registry.list_models(), indent=2, ensure_ascii=False))
            return 0
        if args.model_action == "rollout":
            return _rollout(args, config, database, registry)
        card = _read_card(args.card) if args.card else {}
        classes, class_map, backend = _class_map_of(args, card)
        row = registry.add(
            args.file, args.name, args.version, classes, card, args.uploader, class_map, backend
        )
    finally:
        database.close()
    print(f"model {row['name']} {row['version']}: sha256 {row['sha256']}, signed ({row['key_id']})")
    return 0


def _rollout(args: argparse.Namespace, config: Any, database: Any, registry: Any) -> int:
    from central.models.rollout import Rollout, broker_sender

    plan = Rollout(database, registry, args.name, args.version)
    if not args.status:
        registry.get(args.name, args.version)  # an unknown version fails before anything is sent
        with broker_sender(config, database) as send:
            if args.back:
                sent = plan.back(send, args.by)
            else:
                group = (
                    [s.strip() for s in args.sites.split(",") if s.strip()] if args.sites else None
                )
                sites = plan.choose(args.percent, args.rest, group)
                sent = plan.install(sites, send, args.by, args.shadow)
        print(f"{'rollback' if args.back else 'install'} sent to {len(sent)} site(s)")
        if args.percent is not None:
            offline = plan.offline_left()
            print(f"{len(offline)} offline site(s) not counted, left for --rest: "
                  f"{', '.join(offline[:20])}{' ...' if len(offline) > 20 else ''}")  # fmt: skip
    print(json.dumps(plan.progress(), indent=2, ensure_ascii=False))
    return 0


def _class_map_of(
    args: argparse.Namespace, card: dict[str, Any]
) -> tuple[list[str], dict[str, str | None] | None, str]:
    """Class names, class map and backend from the options, else from the model card."""
    from central.errors import InvalidInputError

    if args.classes:
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    elif isinstance(card.get("classes"), list):
        classes = [str(c) for c in card["classes"]]
    else:
        raise InvalidInputError("--classes: give the model's class names (the card has none)")
    class_map: dict[str, str | None] | None = None
    if args.class_map:
        class_map = {}
        for pair in args.class_map.split(","):
            model_class, sep, label = pair.partition("=")
            if not sep or not model_class.strip():
                raise InvalidInputError(f"--class-map: {pair!r} is not CLASS=label")
            class_map[model_class.strip()] = label.strip() or None
    elif isinstance(card.get("class_map"), dict):
        class_map = {str(k): (str(v) if v is not None else None)
                     for k, v in card["class_map"].items()}  # fmt: skip
    backend = args.backend or str(card.get("backend") or "onnx")
    return classes, class_map, backend


def _read_card(path: Path) -> dict[str, Any]:
    from central.errors import InvalidInputError

    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InvalidInputError(f"model card {path}: {e}") from e
    if not isinstance(card, dict):
        raise InvalidInputError(f"model card {path}: a JSON object is expected")
    return card


def run_train(args: argparse.Namespace) -> int:
    """Train and print the card."""
    from central.models.train import SCRATCH_ARCHITECTURE, TrainSettings, train

    settings = TrainSettings(
        dataset=args.dataset,
        out=args.out,
        base=args.base or SCRATCH_ARCHITECTURE,
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        device=args.device,
    )
    card = train(settings)
    print(json.dumps(card, indent=2))
    return 0


COMMANDS = {"dataset": run_dataset, "model": run_model, "train": run_train}
