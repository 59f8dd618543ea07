"""Export: a time range of a camera's recording as one MP4 (packet copy) plus its manifest.

The clip starts at the keyframe at or before the requested start, so it decodes from its
first frame. Video only: audio of kitchens and slaughter lines is not evidence here and
keeping it would tie the clip to a second track's timing. The manifest lists the chained
segments the clip was cut from (every link between the first and the last, so the chain
can be checked without gaps) and the clip's own SHA-256.
"""

from __future__ import annotations

from pathlib import Path

import av

from edge_agent.errors import UplinkError
from edge_agent.recording.index import Segment, SegmentIndex
from edge_agent.uplink.recordings import chain_between, segments_between
from fsv_common.clip import NoVideoTrack, copy_range
from fsv_contract.video import ClipManifest, ManifestSegment


def export_clip(
    index: SegmentIndex,
    storage: Path,
    site: str,
    camera: str,
    start: float,
    end: float,
    out_path: Path,
) -> ClipManifest:
    """Write [start, end) of `camera` to `out_path` and return the clip's manifest.

    UplinkError if nothing was recorded in the range or the files cannot be read.
    """
    segments = [
        s for s in segments_between(index, camera, start, end) if (storage / s.path).is_file()
    ]
    if not segments:
        raise UplinkError(f"camera {camera!r} recorded nothing between those times")
    files = ((s, storage / s.path, s.start) for s in segments)
    try:
        writer, used = copy_range(files, start, end, out_path)
    except NoVideoTrack as e:
        raise UplinkError(str(e)) from e
    except (av.FFmpegError, OSError) as e:
        raise UplinkError(f"cannot read the recording: {e}") from e
    if writer is None or writer.origin is None or writer.last_wall is None:
        raise UplinkError(f"camera {camera!r} has no video frame between those times")
    return writer.manifest(site, camera, start, end, _chain(index, camera, used))


def _chain(index: SegmentIndex, camera: str, used: list[Segment]) -> list[ManifestSegment]:
    ids = {s.id for s in used}
    rows = chain_between(index, camera, min(ids), max(ids))
    return [
        ManifestSegment(
            path=s.path,
            start=s.start,
            end=s.end,
            bytes=s.bytes,
            sha256=s.sha256,
            prev_chain=s.prev_chain,
            chain=s.chain,
            used=s.id in ids,
        )
        for s in rows
    ]
