"""`central-server audit SITE`: run an integrity audit now through the running server."""

from __future__ import annotations

import argparse
import json
import time

from central.config import load_config
from central.integrity.audits import Audits
from central.storage.db import CentralDatabase

FINAL = ("done", "unanswered", "failed")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `audit` sub-command."""
    p = subparsers.add_parser(
        "audit",
        help="make a site prove random anchored segments now (the server sends it)",
        description="Queue an integrity audit of SITE in central's database; the running "
        "server sends it to the edge, which hashes the segment files on its disk. Exit "
        "status 0: every segment proved; 1: tampering found; 2: no answer in time.",
    )
    p.add_argument("site", help="site id")
    p.add_argument("-c", "--config", default="/etc/central/central.yaml", help="YAML config")
    p.add_argument("--camera", default=None, help="only this camera (default: every camera)")
    p.add_argument("--samples", type=int, default=3, help="segments per camera (default 3)")
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the answer")
    p.add_argument("--json", action="store_true", help="print the audit as JSON")


def run(args: argparse.Namespace) -> int:
    """Queue the audit, wait for its result and print it."""
    config = load_config(args.config)
    database = CentralDatabase(config.database_url)
    try:
        audits = Audits(database)
        audit_id = audits.request(args.site, args.camera, max(1, min(args.samples, 50)), "cli")
        deadline = time.monotonic() + args.wait
        row = audits.get(audit_id)
        while row is not None and row["state"] not in FINAL and time.monotonic() < deadline:
            time.sleep(0.5)
            row = audits.get(audit_id)
    finally:
        database.close()
    assert row is not None
    if args.json:
        print(json.dumps(row, indent=2, default=str))
    else:
        _print(row)
    if row["state"] == "done":
        return 1 if row["tampered"] else 0
    return 2


def _print(row: dict[str, object]) -> None:
    state = row["state"]
    print(f"audit {row['id']} of {row['site']}: {state}")
    if state not in FINAL:
        print("no answer yet: is `central-server run` running and the site online?")
        return
    result = row["result"] if isinstance(row["result"], dict) else {}
    if result.get("note") or result.get("error"):
        print(f"  {result.get('note') or result.get('error')}")
    for proof in result.get("proofs", []):
        verdict = "ok" if proof.get("ok") else f"TAMPERED: {proof.get('problem')}"
        print(f"  {proof['camera']}/{proof['path']}: {verdict}")
    if state == "done":
        print(f"{row['checked']} segment(s) proved, {row['tampered']} problem(s)")
