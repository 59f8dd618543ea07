"""Retention fixtures: a small real MP4 made by ffmpeg and a factory of temp sites."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from retention_site import Site, SiteFactory


@pytest.fixture(scope="session")
def segment_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-second fragmented MP4 made by ffmpeg; copied under many segment names."""
    out = tmp_path_factory.mktemp("retention-media") / "segment.mp4"
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
            "-i", "testsrc=size=160x120:rate=5", "-t", "1", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", "-movflags", "+frag_keyframe+empty_moov", "-y", str(out),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return out


@pytest.fixture
def make_site(tmp_path: Path, segment_mp4: Path) -> Iterator[SiteFactory]:
    """Factory: make_site({"cam-a": 90, ...}, **storage_settings) -> Site."""
    sites: list[Site] = []

    def factory(cameras: dict[str, int], **storage: Any) -> Site:
        site = Site(tmp_path / f"site{len(sites)}", segment_mp4, cameras, **storage)
        sites.append(site)
        return site

    yield factory
    for site in sites:
        site.index.close()
