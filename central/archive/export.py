"""Clip exports cut at central from the city archive, for when the edge is away.

The archive's files were verified against the chain the edge anchored, so the clip's
manifest lists central's anchored links of the segments used (and every link between them),
like the edge's own manifest; the main stream where the archive holds it in the range, else
the sub stream's lane (the manifest's camera is then `<camera>--sub`).
"""

from __future__ import annotations

from pathlib import Path

import av

from central.archive.sources import archived_lanes
from central.archive.store import Stored
from central.archive.transfer import Archive
from fsv_common.clip import ClipWriter, NoVideoTrack, copy_range
from fsv_contract.lanes import Lane, lane_id, split_lane
from fsv_contract.video import ClipManifest, ManifestSegment


class ArchiveExportError(Exception):
    """The archive cannot make that clip (nothing archived there, an unreadable file)."""


def archived_for_export(
    archive: Archive, site: str, camera: str, start: float, end: float
) -> tuple[Lane, list[Stored]] | None:
    """The stream and archived segments a clip of [start, end) would be cut from, or None."""
    held = [s for s in archived_lanes(archive.store, site, camera, start, end)
            if archive.file(site, s.path).is_file()]  # fmt: skip
    for stream in ("main", "sub"):
        lane = [s for s in held if split_lane(s.camera)[1] == stream]
        if lane:
            return stream, lane
    return None


def export_from_archive(
    archive: Archive, site: str, camera: str, start: float, end: float, out_path: Path
) -> tuple[Lane, ClipManifest]:
    """Cut [start, end) of `camera` from the archive into `out_path`: the stream and manifest.

    ArchiveExportError if the archive holds nothing there or the files cannot be read.
    """
    found = archived_for_export(archive, site, camera, start, end)
    if found is None:
        raise ArchiveExportError(f"the archive holds nothing of {camera!r} in that range")
    stream, segments = found
    writer, used = _cut(archive, site, segments, start, end, out_path)
    if writer is None or writer.origin is None or writer.last_wall is None:
        raise ArchiveExportError(f"the archive has no video frame of {camera!r} in that range")
    lane = lane_id(camera, stream)
    manifest = writer.manifest(site, lane, start, end, _anchored_chain(archive, site, lane, used))
    return stream, manifest


def _cut(
    archive: Archive, site: str, segments: list[Stored], start: float, end: float, out: Path
) -> tuple[ClipWriter | None, list[Stored]]:
    files = ((seg, archive.file(site, seg.path), seg.start) for seg in segments)
    try:
        return copy_range(files, start, end, out)
    except (av.FFmpegError, OSError, NoVideoTrack) as e:
        raise ArchiveExportError(f"cannot read the archived recording: {e}") from e


def _anchored_chain(
    archive: Archive, site: str, lane: str, used: list[Stored]
) -> list[ManifestSegment]:
    """Central's anchored links from the first used segment to the last, in chain order."""
    paths = {s.path for s in used}
    with archive.central.read() as db:
        rows = db.execute(
            'select path, start, "end", bytes, sha256, prev_chain, chain from anchored_segments '
            "where site = ? and camera = ? and start >= ? and start <= ? order by start, id",
            [site, lane, used[0].start, used[-1].start],
        ).fetchall()
    return [
        ManifestSegment(path=r[0], start=r[1], end=r[2], bytes=r[3], sha256=r[4],
                        prev_chain=r[5], chain=r[6], used=r[0] in paths)
        for r in rows
    ]  # fmt: skip
