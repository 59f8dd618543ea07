"""`central-server dataset export`: labelled alerts out as a YOLO dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from central.config import load_config
from central.db import CentralDatabase
from central.models.dataset import DEFAULT_LICENCE, export_dataset, parse_classes
from central.schema import apply_migrations

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


def run_dataset(args: argparse.Namespace) -> int:
    """Export the dataset and print its counts."""
    classes = parse_classes(args.classes)
    config = load_config(args.config)
    database = CentralDatabase(config.database_path)
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


COMMANDS = {"dataset": run_dataset}
