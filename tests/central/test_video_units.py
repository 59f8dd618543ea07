"""Pure parts of the relay: a viewer's bounded buffer, the HLS window, site uplink health."""

from __future__ import annotations

import time

from central.regulation.scope import Scope
from central.video.buffer import ViewerBuffer
from central.video.hls import HlsWindow
from central.video.status import site_status
from central.video.upstream import StreamKey, Upstream


def test_a_slow_viewer_drops_its_backlog_and_resumes_at_a_keyframe() -> None:
    buf = ViewerBuffer(max_bytes=30)
    buf.control("hello")
    buf.init(b"I" * 5)
    assert buf.media(b"K" * 10, keyframe=True)
    assert buf.media(b"p" * 10, keyframe=False)
    assert not buf.media(b"q" * 10, keyframe=False)  # over the bound: backlog dropped
    assert not buf.media(b"r" * 10, keyframe=False)  # still waiting for a keyframe
    assert buf.media(b"L" * 10, keyframe=True)
    assert buf.take() == ["hello", b"I" * 5, b"L" * 10]
    assert buf.dropped == 4


def test_a_new_init_replaces_the_old_timeline() -> None:
    buf = ViewerBuffer()
    buf.init(b"I1")
    buf.media(b"K", keyframe=True)
    buf.init(b"I2")
    assert not buf.media(b"p", keyframe=False)
    assert buf.take() == [b"I2"]


def test_hls_segments_are_whole_gops_in_a_rolling_window() -> None:
    window = HlsWindow(window=2)
    window.new_init(b"init")
    window.fragment(b"x", keyframe=False, duration_s=0.04, wall=0.0)  # before any keyframe
    for gop in range(4):
        for i in range(50):
            window.fragment(bytes([gop]), keyframe=i == 0, duration_s=0.04, wall=100.0 + 2 * gop)
    assert [s.sequence for s in window.segments] == [1, 2]  # 0 left the window; 3 is open
    text = window.playlist("sub")
    assert text is not None
    assert "#EXT-X-MEDIA-SEQUENCE:1" in text and "#EXTINF:2.000," in text
    assert 'URI="sub-init-1.mp4"' in text and "sub-1-2.m4s" in text
    assert window.segment(2) is not None and window.segment(0) is None
    window.new_init(b"init2")
    assert window.playlist("sub") is None and window.generation == 2


def test_a_live_uplink_slower_than_real_time_marks_its_site_starved() -> None:
    up = Upstream(StreamKey("site-a", "cam1"), "t" * 43)
    up.org_path = "/1/2/"
    up.state = "streaming"
    now = time.monotonic()
    up.requested_at = now - 60
    for i in range(100):  # 100 frames of 40 ms in 10 s: 0.4 s of video per second
        up._media.append((now - 10 + i * 0.1, 0.04, 1000))
    [site] = site_status([up], Scope("/1/"), {"site-a": 300_000.0})
    assert site["starved"] and site["upstreams"] == 1 and site["reported_bps"] == 300_000.0
    assert site_status([up], Scope("/9/")) == []
    quiet = site_status([], Scope("/1/"), {"site-b": 1000.0, "site-c": None})
    assert [s["site"] for s in quiet] == ["site-b"]
