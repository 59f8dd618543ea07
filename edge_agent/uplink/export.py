"""Export: a time range of a camera's recording as one MP4 (packet copy) plus its manifest.

The clip starts at the keyframe at or before the requested start, so it decodes from its
first frame. Video only: audio of kitchens and slaughter lines is not evidence here and
keeping it would tie the clip to a second track's timing. The manifest lists the chained
segments the clip was cut from (every link between the first and the last, so the chain
can be checked without gaps) and the clip's own SHA-256.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import av

from edge_agent.errors import UplinkError
from edge_agent.recording.index import Segment, SegmentIndex, file_sha256
from edge_agent.uplink.recordings import chain_between, segments_between
from edge_agent.uplink.replay import segment_packets
from fsv_common.clip import ClipWriter, from_keyframe
from fsv_contract.video import ClipFile, ClipManifest, ManifestSegment

log = logging.getLogger(__name__)


def _copy(
    writer: ClipWriter | None,
    used: list[Segment],
    segment: Segment,
    storage: Path,
    start: float,
    end: float,
    out_path: Path,
) -> tuple[ClipWriter | None, bool]:
    """Copy one segment's packets in range; returns the writer and whether to go on."""
    packets = segment_packets(storage / segment.path, segment)
    for stream, packet in from_keyframe(packets, start) if writer is None else packets:
        if packet.wall >= end:
            return writer, False
        if writer is None:
            writer = ClipWriter(out_path, stream)
        elif (stream.codec_context.name, stream.codec_context.extradata) != writer.setup:
            log.warning("%s: the stream changed inside the clip; it ends there", segment.camera)
            return writer, False
        if not used or used[-1].id != segment.id:
            used.append(segment)
        writer.write(packet)
    return writer, True


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
    writer: ClipWriter | None = None
    used: list[Segment] = []
    try:
        for segment in segments:
            writer, more = _copy(writer, used, segment, storage, start, end, out_path)
            if not more:
                break
    except (av.FFmpegError, OSError) as e:
        raise UplinkError(f"cannot read the recording: {e}") from e
    finally:
        if writer is not None:
            writer.close()
    if writer is None or writer.origin is None or writer.last_wall is None:
        raise UplinkError(f"camera {camera!r} has no video frame between those times")
    return ClipManifest(
        site=site,
        camera=camera,
        requested_start=start,
        requested_end=end,
        clip_start=writer.origin,
        clip_end=writer.last_wall,
        codec=writer.setup[0],
        file=ClipFile(
            name=out_path.name, bytes=out_path.stat().st_size, sha256=file_sha256(out_path)
        ),
        segments=_chain(index, camera, used),
        created_at=time.time(),
    )


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
