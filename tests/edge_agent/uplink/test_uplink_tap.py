"""GOP cache, live tap and the uplink's bounded packet queue."""

from __future__ import annotations

from fractions import Fraction

from edge_agent.recording.events import PacketEvent
from edge_agent.uplink.live import PacketQueue
from edge_agent.uplink.tap import GopCache, LiveTap, TapRegistry


def _event(n: int, key: bool, size: int = 10) -> PacketEvent:
    return PacketEvent("cam1", "video", "h264", bytes(size), n, n, Fraction(1, 25), n, key, None)


def test_gop_cache_starts_over_at_each_keyframe() -> None:
    gop = GopCache()
    for n, key in enumerate([False, True, False, False, True, False]):
        gop.add(_event(n, key))
    assert [p.dts for p in gop.packets] == [4, 5]


def test_gop_cache_gives_up_on_a_gop_over_its_bound() -> None:
    gop = GopCache(max_bytes=25)
    for n, key in enumerate([True, False, False]):
        gop.add(_event(n, key))
    assert gop.packets == []
    gop.add(_event(3, False))
    assert gop.packets == []  # waits for the next keyframe
    gop.add(_event(4, True))
    assert [p.dts for p in gop.packets] == [4]


def test_a_subscriber_gets_the_cached_gop_then_every_new_packet() -> None:
    tap = LiveTap("cam1", "sub")
    for n, key in enumerate([True, False, True, False]):
        tap.publish(_event(n, key))
    seen: list[int] = []
    callback = lambda e: seen.append(e.dts)  # noqa: E731
    gop = tap.subscribe(callback)
    tap.publish(_event(4, False))
    tap.unsubscribe(callback)
    tap.publish(_event(5, False))
    assert [e.dts for e in gop] == [2, 3]
    assert seen == [4]
    assert tap.online() and tap.subscribers == 0


def test_registry_names_a_missing_stream() -> None:
    registry = TapRegistry()
    registry.add(LiveTap("cam1", "main"))
    try:
        registry.get("cam1", "sub")
    except Exception as e:  # noqa: BLE001
        assert "no live sub stream" in str(e)
    else:
        raise AssertionError("expected UplinkError")


def test_a_slow_link_skips_to_the_next_keyframe() -> None:
    queue = PacketQueue(max_items=3)
    for n, key in enumerate([True, False, False, False, False, True, False]):
        queue.put(_event(n, key))
    # 0..2 queued; 3 overflows: backlog dropped, 3 and 4 skipped, 5 (keyframe) resumes.
    assert [e.dts for e in queue._items] == [5, 6]
    assert queue.dropped == 5
