"""Audit log pages at two log sizes: does a page cost the same with 25 times more entries?

Fills a real central database (regulator migrations, its indexes) with a synthetic log
(90 days, 50 users, a mix of actions, some rare), then times AuditSearch pages (50 entries)
for the filters the admin page offers, at a small and a large size; beside them the reads
the page used before (a count of the matches and an offset page), for comparison.

Prints the figures and writes bench/results/audit_pages.json (medians in ms and the
large/small ratio per query, the machine and its load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from central.regulation.audit_search import AuditFilter, AuditSearch, Cursor
from central.regulation.scope import Scope
from central.schema import apply_migrations
from central.storage.db import CentralDatabase

RESULTS = Path(__file__).resolve().parent / "results" / "audit_pages.json"
START = 1_788_000_000.0  # entries spread over 90 days from here
SPAN_S = 90 * 86400.0
# (action, weight): video views dominate a real log, admin changes are rare.
MIX = [("live_view", 60), ("replay", 15), ("login", 10), ("alert_transition", 10),
       ("report_view", 4), ("webhook_test", 1)]  # fmt: skip


def fill(db: CentralDatabase, first: int, count: int, total: int, rng: random.Random) -> None:
    """Append entries number first..first+count of a log of `total` evenly spaced entries."""
    actions = [a for a, w in MIX for _ in range(w)]
    rows = []
    for i in range(first, first + count):
        action = rng.choice(actions)
        rows.append(
            (
                START + SPAN_S * i / total,
                f"user-{rng.randrange(50)}",
                action,
                f"camera:site-{rng.randrange(500)}/cam{rng.randrange(8)}"
                if action in ("live_view", "replay")
                else f"webhook:{rng.randrange(20)}",
                json.dumps({"n": i, "note": "needle" if rng.random() < 1e-4 else "hay"}),
                f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                f"/1/{rng.randrange(2, 40)}/",
            )
        )
    with db.transaction() as tx:
        tx.conn.executemany(
            "insert into audit_log (ts, username, action, target, detail, ip, org_path) "
            "values (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


def queries(db: CentralDatabase) -> dict[str, Callable[[], Any]]:
    """What one page request runs, per filter; and the count-and-offset reads of before."""
    search = AuditSearch(db)
    every = Scope.everything()
    day_two = START + 86400  # within the small log's span too: the same entries at both sizes

    def deep_page() -> None:
        cursor: Cursor | None = None
        for _ in range(20):  # the 20th page, following `next`
            page = search.page(every, AuditFilter(), cursor, 50)
            cursor = page.next

    def old(where: str, args: list[Any]) -> Callable[[], Any]:
        def run() -> None:
            with db.read() as r:
                r.execute(f"select count(*) from audit_log where {where}", args).fetchone()
                r.execute(
                    f"select * from audit_log where {where} order by id desc limit 50 offset 950",
                    args,
                ).fetchall()

        return run

    return {
        "newest": lambda: search.page(every, AuditFilter(), None, 50),
        "page_20": deep_page,
        "rare_action": lambda: search.page(every, AuditFilter(action="webhook_test"), None, 50),
        "actor": lambda: search.page(every, AuditFilter(actor="user-7"), None, 50),
        "exact_target": lambda: search.page(every, AuditFilter(target="webhook:3"), None, 50),
        "one_day": lambda: search.page(
            every, AuditFilter(since=day_two, until=day_two + 86400), None, 50
        ),
        "text_bounded": lambda: search.page(every, AuditFilter(text="needle"), None, 50),
        "before_count_offset_all": old("1 = 1", []),
        "before_count_offset_action": old("action = ?", ["webhook_test"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = random.Random(7)
    load_before = [round(x, 2) for x in os.getloadavg()]
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = CentralDatabase(Path(tmp) / "central.db")
        apply_migrations(db)
        # The small log is the first part of the large one, in the same time span.
        step = args.large // 20
        done = 0
        for size in (args.small, args.large):
            while done < size:
                n = min(step, size - done)
                fill(db, done, n, args.large, rng)
                done += n
            for name, fn in queries(db).items():
                figures.setdefault(name, {})[str(size)] = median_ms(fn, args.repeats)
        db.close()
    result = {
        "what": "ms per audit log page request (median), AuditSearch with 50 entries a page",
        "sizes": [args.small, args.large],
        "median_ms": figures,
        "ratio_large_to_small": {
            k: round(v[str(args.large)] / max(v[str(args.small)], 1e-6), 2)
            for k, v in figures.items()
        },
        "repeats": args.repeats,
        "scan_limit": AuditSearch(db).scan_limit,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },  # fmt: skip
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'query':28} {args.small:>10} {args.large:>10}  ratio")
    for name, v in figures.items():
        ratio = result["ratio_large_to_small"][name]
        print(f"{name:28} {v[str(args.small)]:>10} {v[str(args.large)]:>10}  {ratio}")
    print(f"load average before {load_before}, after {result['machine']['loadavg_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
