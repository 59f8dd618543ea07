"""The `central-server` command."""

from __future__ import annotations

import argparse

from central import __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="central-server",
        description="Food-safety video central server: ingest, organisation tree, video relay.",
    )
    parser.add_argument("--version", action="version", version=f"central-server {__version__}")
    parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `central-server`; returns the exit code."""
    build_parser().parse_args(argv)
    return 0
