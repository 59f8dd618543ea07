"""Retention test helpers: temp storage with a real index, real segment files, a simulated disk."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from edge_agent.config import EdgeConfig
from edge_agent.recording.index import Segment, SegmentIndex, SegmentInfo
from edge_agent.recording.paths import segment_relpath
from fsv_common.digest import file_sha256

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z, a fixed "installation day" for the tests
DAY = 86400.0


class Usage(NamedTuple):
    """Same shape as shutil.disk_usage's answer."""

    total: int
    used: int
    free: int


class SimulatedDisk:
    """A disk of `total` bytes whose use is the real files under `root` plus `other_used`.

    Deleting a segment file really frees its bytes, so the cleaner sees the effect of its
    own deletions exactly as on a full disk.
    """

    def __init__(self, root: Path, total: int, other_used: int = 0) -> None:
        self.root = root
        self.total = total
        self.other_used = other_used

    def files_bytes(self) -> int:
        """Bytes of the segment files under the root."""
        return sum(p.stat().st_size for p in self.root.rglob("*.mp4") if p.is_file())

    def __call__(self, path: Path) -> Usage:
        used = self.other_used + self.files_bytes()
        return Usage(self.total, used, self.total - used)


class Site:
    """Temp storage with a config, a real SegmentIndex and segment files copied from one MP4."""

    def __init__(self, root: Path, media: Path, cameras: dict[str, int], **storage: Any) -> None:
        self.media = media
        self.size = media.stat().st_size
        self.sha = file_sha256(media)
        self.config_data: dict[str, Any] = {
            "site_id": "plant-1",
            "timezone": "UTC",
            "storage": {"path": str(root / "storage"), "cleanup_interval_s": 0.001, **storage},
            "cameras": [
                {
                    "id": cam,
                    "name": f"camera {cam}",
                    "station": "quarantine",
                    "main_url": f"rtsp://127.0.0.1:8554/{cam}",
                    "retention_days": days,
                }
                for cam, days in cameras.items()
            ],
        }
        root.mkdir(parents=True)
        self.config_path = root / "edge.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config_data), encoding="utf-8")
        self.config = EdgeConfig.model_validate(self.config_data)
        self.storage = self.config.storage.path
        self.storage.mkdir()
        self.index = SegmentIndex(self.config.state_dir / "index.db")

    def add(self, camera: str, start: float, seconds: float = 60.0) -> Segment:
        """Write a real segment file for `camera` at `start` and index it."""
        rel = segment_relpath(camera, start)
        path = self.storage / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.media, path)
        info = SegmentInfo(
            camera, rel, start, start + seconds, self.size, "h264", 160, 120, None, self.sha
        )
        return self.index.add_segment(info)

    def add_run(self, camera: str, start: float, count: int, every: float = 60.0) -> list[Segment]:
        """`count` back-to-back segments from `start`."""
        return [self.add(camera, start + i * every, every) for i in range(count)]

    def set_storage(self, **changes: Any) -> None:
        """Change storage settings after the segments exist (their size is known then)."""
        storage = self.config.storage.model_copy(update=changes)
        self.config = self.config.model_copy(update={"storage": storage})

    def exists(self, seg: Segment) -> bool:
        """True if the segment's file is still on disk."""
        return (self.storage / seg.path).exists()

    def indexed_ids(self) -> set[int]:
        """Ids of every indexed segment."""
        return {s.id for s in self.index.segments()}


SiteFactory = Callable[..., Site]
