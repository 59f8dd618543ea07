"""fMP4 remuxing of camera packets: init then one fragment per frame, decodable, no transcode."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import av
import pytest

from edge_agent.errors import UplinkError
from edge_agent.uplink.fmp4 import (
    Fmp4Remuxer,
    MediaPacket,
    codec_string,
    nal_units,
    parameter_sets,
    probe_stream,
    take_boxes,
)
from fsv_contract.video import FrameKind, unpack_frame
from testbed.footage import Footage
from tests.edge_agent.uplink.conftest import annexb_events, decoded_counters


def _remux(events: list, smooth: bool = True) -> tuple[Fmp4Remuxer, list]:  # type: ignore[type-arg]
    first = events[0]
    info = probe_stream("h264", None, first.data, first.time_base)
    remuxer = Fmp4Remuxer(info, smooth_jumps=smooth)
    chunks = []
    for e in events:
        chunks += remuxer.add(MediaPacket(e.data, e.dts, e.pts, 0, e.keyframe, e.wall))
    chunks += remuxer.close()
    return remuxer, chunks


def test_annexb_packets_become_init_and_one_fragment_per_frame(footage: Footage) -> None:
    events = annexb_events(footage.short_h264)[:60]
    remuxer, chunks = _remux(events)
    assert chunks[0].header.kind is FrameKind.INIT
    fragments = chunks[1:]
    assert len(fragments) == len(events)
    assert [c.header.keyframe for c in fragments] == [e.keyframe for e in events]
    assert [c.header.media_us for c in fragments[:3]] == [0, 40_000, 80_000]
    assert fragments[1].header.wall_ms == round(events[1].wall * 1000)
    assert remuxer.mime == 'video/mp4; codecs="avc1.64001e"'
    assert (remuxer.width, remuxer.height) == (640, 360)
    counters = decoded_counters(b"".join(c.payload for c in chunks))
    assert len(counters) == 60
    assert [c for _, c in counters] == list(range(counters[0][1], counters[0][1] + 60))


def test_a_frame_header_round_trips(footage: Footage) -> None:
    _, chunks = _remux(annexb_events(footage.short_h264)[:3])
    header, payload = unpack_frame(chunks[1].frame())
    assert header == chunks[1].header
    assert bytes(payload) == chunks[1].payload


def test_a_clock_jump_is_smoothed_for_live_and_kept_for_replay(footage: Footage) -> None:
    events = annexb_events(footage.short_h264)[:10]
    jumped = events[:5] + [
        replace(e, dts=e.dts + 90000 * 3600, pts=e.pts + 90000 * 3600) for e in events[5:]
    ]
    _, live = _remux(jumped, smooth=True)
    assert [c.header.media_us for c in live[1:]][4:7] == [160_000, 200_000, 240_000]
    _, replay = _remux(jumped, smooth=False)
    assert replay[6].header.media_us == 3600_000_000 + 200_000


def test_codec_strings(footage: Footage) -> None:
    with av.open(str(footage.main_h265)) as container:
        stream = container.streams.video[0]
        remuxer = Fmp4Remuxer(stream)
        packet = next(p for p in container.demux(stream) if p.size)
        chunks = remuxer.add(MediaPacket(bytes(packet), 0, 0, 0, True, 0.0))
        remuxer.close()
    assert codec_string(chunks[0].payload).startswith("hvc1.1.6.L")
    assert remuxer.codec == "hevc"


def test_parameter_sets_and_nal_units() -> None:
    sps, pps, idr = b"\x67\x64\x00\x1e", b"\x68\xef", b"\x65\x88\x84"
    stream = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps + b"\x00\x00\x00\x01" + idr
    assert nal_units(stream) == [sps, pps, idr]
    assert parameter_sets("h264", stream) == b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps


def test_bad_input_is_a_named_error() -> None:
    with pytest.raises(UplinkError, match="cannot relay"):
        probe_stream("mjpeg", None, b"\xff\xd8", Fraction(1, 90000))
    with pytest.raises(UplinkError, match="parameter sets"):
        probe_stream("h264", None, b"\x00\x00\x01\x65\x88", Fraction(1, 90000))
    with pytest.raises(UplinkError, match="malformed"):
        take_boxes(bytearray(b"\x00\x00\x00\x02moof"))
