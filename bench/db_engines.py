"""Central's database engines side by side: the ingest store's write rate and a page read,
on SQLite (a file, WAL) and on PostgreSQL (a local server started in a temporary folder, as
the tests start it: fsync off, so its figure is an upper bound of a durable server's).

Each run stores `--events` start-phase events in batches of `--batch` through the ingest
store (one durable transaction per batch, as ingest does before it acknowledges the broker),
then reads the newest page of events of one camera `--reads` times through `read()`.
Also times the `?` -> `%s` translation of one statement (cached after the first call).
Prints medians of `--runs` runs and writes bench/results/db_engines.json.

    .venv/bin/python bench/db_engines.py [--events 5000] [--batch 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine  # noqa: E402
from central.ingest.broker_client import RawMessage  # noqa: E402
from central.ingest.pipeline import Ingest  # noqa: E402
from central.ingest.store import IngestStore  # noqa: E402
from central.storage.db import CentralDatabase  # noqa: E402
from central.storage.pg import translate  # noqa: E402
from fsv_contract import EventPayload, encode, topics  # noqa: E402
from testbed.postgres import PostgresServer  # noqa: E402

RESULTS = REPO / "bench" / "results" / "db_engines.json"
PAGE_SQL = "select * from events where site = ? and camera = ? order by id desc limit 50"


def messages(n: int) -> list[RawMessage]:
    """`n` start-phase events of 8 cameras of one site."""
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        camera = f"cam{i % 8}"
        payload = EventPayload(
            event_id=uuid.uuid4(), site="s1", camera=camera, phase="start", kind="no_mask",
            station="kitchen", rule="mask", start=now, score=0.5,
        )  # fmt: skip
        out.append(
            RawMessage(topics.camera_event("s1", camera), encode(payload), time.time(), i, 1)
        )
    return out


def run_once(target: str | Path, events: int, batch: int, reads: int) -> dict[str, float]:
    """Write rate and read time on one fresh database."""
    database = CentralDatabase(target)
    ingest = Ingest(IngestStore(database))
    todo = messages(events)
    started = time.perf_counter()
    for i in range(0, len(todo), batch):
        ingest.process(todo[i : i + batch], ack=False)
    write_s = time.perf_counter() - started
    with database.read() as r:
        stored = int(r.execute("select count(*) from events").fetchone()[0])
    assert stored == events, stored
    times = []
    for i in range(reads):
        t0 = time.perf_counter()
        with database.read() as r:
            rows = list(r.query(PAGE_SQL, ["s1", f"cam{i % 8}"]))
        times.append(time.perf_counter() - t0)
        assert len(rows) == 50
    database.close()
    return {"events_per_s": events / write_s, "page_read_ms": statistics.median(times) * 1000}


def translate_us() -> dict[str, float]:
    """Microseconds of the placeholder translation: first call and cached."""
    sql = PAGE_SQL + f" -- {uuid.uuid4()}"
    t0 = time.perf_counter()
    translate(sql)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(10000):
        translate(sql)
    cached = (time.perf_counter() - t0) / 10000
    return {"first_us": first * 1e6, "cached_us": cached * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, Any] = {"events": args.events, "batch": args.batch, "runs": args.runs}
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as server:
        runs: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgres": []}
        for n in range(args.runs):
            runs["sqlite"].append(
                run_once(Path(tmp) / f"c{n}.db", args.events, args.batch, args.reads)
            )
            runs["postgres"].append(
                run_once(server.create_database(), args.events, args.batch, args.reads)
            )
        for engine, got in runs.items():
            results[engine] = {
                key: round(statistics.median(r[key] for r in got), 2) for key in got[0]
            }
    results["postgres_vs_sqlite_write"] = round(
        results["postgres"]["events_per_s"] / results["sqlite"]["events_per_s"], 2
    )
    results["translate"] = {k: round(v, 2) for k, v in translate_us().items()}
    results["machine"] = describe_machine("PostgreSQL with fsync off (test settings)")
    print(json.dumps(results, indent=2))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
