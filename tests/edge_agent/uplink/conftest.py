"""Uplink test helpers: camera-like packets from the real footage, recorded segment stores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from edge_agent.recording.events import PacketEvent
from edge_agent.recording.index import Segment, SegmentIndex
from edge_agent.recording.segment_writer import SegmentFile
from testbed.footage import Footage, read_frame_counter

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def annexb_events(path: Path, camera: str = "cam1", wall0: float = T0) -> list[PacketEvent]:
    """The clip's video packets as an RTSP reader hands them on: Annex B, 90 kHz, stamped."""
    events: list[PacketEvent] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        bsf = av.BitStreamFilterContext("h264_mp4toannexb", stream)
        tb = stream.time_base or Fraction(1, 1000)
        for packet in container.demux(stream):
            for out in bsf.filter(packet):
                if not out.size or out.dts is None:
                    continue
                dts = round(out.dts * tb * 90000)
                events.append(
                    PacketEvent(
                        camera=camera,
                        kind="video",
                        codec="h264",
                        data=bytes(out),
                        pts=round((out.pts if out.pts is not None else out.dts) * tb * 90000),
                        dts=dts,
                        time_base=Fraction(1, 90000),
                        wall=wall0 + dts / 90000,
                        keyframe=out.is_keyframe,
                        extradata=None,
                    )
                )
    return events


def decoded_counters(data: bytes) -> list[tuple[float, int]]:
    """(seconds, burned-in frame counter) of every frame of an MP4 held in memory."""
    import io

    out: list[tuple[float, int]] = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            image = frame.to_ndarray(format="gray")
            seconds = float(frame.pts * frame.time_base) if frame.pts is not None else -1.0
            out.append((seconds, read_frame_counter(np.asarray(image, dtype=np.uint8))))
    return out


@dataclass
class Recording:
    """A camera's recorded segments in a real index and real files."""

    storage: Path
    index: SegmentIndex
    camera: str
    segments: list[Segment]


def record_clip(
    storage: Path, index: SegmentIndex, camera: str, source: Path, start: float
) -> list[Segment]:
    """Cut `source` into one segment file per GOP (as the recorder cuts at keyframes), indexed."""
    segments: list[Segment] = []
    with av.open(str(source)) as container:
        video = container.streams.video[0]
        tb = float(video.time_base or Fraction(1, 1000))
        current: SegmentFile | None = None
        first_dts = last_dts = 0
        for packet in container.demux(video):
            if packet.dts is None or not packet.size:
                continue
            if packet.is_keyframe:
                if current is not None:
                    end = current.start + (packet.dts - first_dts) * tb
                    segments.append(index.add_segment(current.close(end=end).seal()))
                seg_start = segments[-1].end if segments else start
                current = SegmentFile(storage, camera, seg_start, video, None)
                first_dts = packet.dts
            if current is None:
                continue
            last_dts = packet.dts + (packet.duration or 0)
            packet.stream = current.video_out
            current.container.mux_one(packet)
        if current is not None:
            end = current.start + (last_dts - first_dts) * tb
            segments.append(index.add_segment(current.close(end=end).seal()))
    return segments


@pytest.fixture
def recording(tmp_path: Path, footage: Footage) -> Iterator[Recording]:
    """cam1: the 6 s clip as three 2 s segments, a 10 s outage, then the clip again."""
    storage = tmp_path / "storage"
    storage.mkdir()
    index = SegmentIndex(tmp_path / "index.db")
    first = record_clip(storage, index, "cam1", footage.short_h264, T0)
    second = record_clip(storage, index, "cam1", footage.short_h264, first[-1].end + 10.0)
    yield Recording(storage, index, "cam1", first + second)
    index.close()
