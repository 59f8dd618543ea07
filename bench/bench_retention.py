"""Retention pass cost on a full index: 16 cameras x 90 days of 1-minute segments by default.

Prints the figures and writes bench/results/retention.json. The rows have no files behind
them (the cleaner forgets those as "already gone"), which measures the index side: the
part that grows with the retention duty.

    .venv/bin/python bench/bench_retention.py [--cameras 16] [--days 90]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from edge_agent.config import EdgeConfig
from edge_agent.recording.index import SegmentIndex
from edge_agent.retention.cleaner import RetentionCleaner

T0 = 1_700_000_000.0
SEGMENT_S = 60.0
SEGMENT_BYTES = 30_000_000  # 4 Mbit/s


class Usage(NamedTuple):
    total: int
    used: int
    free: int


def rows(cameras: int, days: int) -> Iterator[tuple[Any, ...]]:
    for minute in range(int(days * 86400 / SEGMENT_S)):
        start = T0 + minute * SEGMENT_S
        for c in range(cameras):
            path = f"cam-{c}/{minute}.mp4"
            yield (f"cam-{c}", path, start, start + SEGMENT_S, SEGMENT_S, SEGMENT_BYTES)


def build_index(path: Path, cameras: int, days: int) -> SegmentIndex:
    index = SegmentIndex(path)
    with index.reading() as db:
        db.conn.executemany(
            'insert into segments (camera, path, start, "end", duration, bytes, codec, width, '
            "height, sha256, prev_chain, chain, repaired, indexed_at) values "
            "(?, ?, ?, ?, ?, ?, 'h264', 1920, 1080, '', '', '', 0, 0)",
            rows(cameras, days),
        )
        db.conn.commit()
    return index


def timed(label: str, results: dict[str, float], fn: Any) -> Any:
    started = time.perf_counter()
    value = fn()
    results[label] = round(time.perf_counter() - started, 3)
    print(f"{label:<34} {results[label]:8.3f} s")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cams = [
            {
                "id": f"cam-{c}",
                "name": "n",
                "station": "quarantine",
                "main_url": "rtsp://127.0.0.1/x",
            }
            for c in range(args.cameras)
        ]
        config = EdgeConfig.model_validate(
            {"site_id": "bench", "storage": {"path": tmp}, "cameras": cams}
        )
        index = timed(
            "build index",
            results,
            lambda: build_index(config.state_dir / "index.db", args.cameras, args.days),
        )
        segment_rows = args.cameras * int(args.days * 86400 / SEGMENT_S)
        newest = T0 + args.days * 86400
        total = 10**13  # 10 TB: the default 5 % watermark wants 500 GB free
        disk = {"free": total}
        cleaner = RetentionCleaner(
            config, index, disk_usage=lambda _p: Usage(total, total - disk["free"], disk["free"])
        )
        timed("first pass (forecast, no expiry)", results, lambda: cleaner.run_once(newest))
        cleaner.forecast_interval_s = 1e9
        one_minute = timed(
            "pass expiring one minute", results, lambda: cleaner.run_once(newest + 2 * SEGMENT_S)
        )
        disk["free"] = total // 20 - 8 * SEGMENT_BYTES  # 8 segments under the watermark
        evicting = timed(
            "pass evicting under watermark",
            results,
            lambda: cleaner.run_once(newest + 3 * SEGMENT_S),
        )
        cleaner.forecast_interval_s = 0
        timed("pass with forecast", results, lambda: cleaner.run_once(newest + 4 * SEGMENT_S))
        cleaner.stop()
        index.close()
    report = {
        "bench": "retention",
        "machine": platform.platform(),
        "cameras": args.cameras,
        "days": args.days,
        "segment_rows": segment_rows,
        "expired_in_minute_pass": len(one_minute.expired),
        "evicted_in_watermark_pass": len(evicting.evicted),
        "seconds": results,
    }
    out = Path(__file__).parent / "results" / "retention.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
