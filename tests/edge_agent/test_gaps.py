"""GapKeeper on a real index: every downtime of the agent is one gap row, however short."""

from pathlib import Path

from edge_agent.recording.gaps import AGENT_NOT_RUNNING, GapKeeper
from edge_agent.recording.index import SegmentIndex

T0 = 1_764_547_200.0


def test_a_restart_seconds_later_still_opens_a_gap(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    keeper = GapKeeper(index, "cam1")
    keeper.resume(last_end=T0, now=T0 + 0.5)  # kill -9 and restart within a second
    keeper.resumed(T0 + 1.7)  # video again after the reconnect and a keyframe
    (gap,) = index.gaps("cam1")
    assert (gap.start, gap.end, gap.reason) == (T0, T0 + 1.7, AGENT_NOT_RUNNING)
    index.close()


def test_a_downtime_that_never_reached_video_goes_on_in_the_same_row(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    GapKeeper(index, "cam1").resume(last_end=T0, now=T0 + 3)  # killed again before any video
    (gap,) = index.gaps("cam1")
    index.close_gap(gap.id, T0 + 9)  # the start-up repair closes it at "now"
    keeper = GapKeeper(index, "cam1")
    keeper.resume(last_end=T0, now=T0 + 9.5)
    keeper.resumed(T0 + 12)
    (gap,) = index.gaps("cam1")
    assert (gap.start, gap.end, gap.reason) == (T0, T0 + 12, AGENT_NOT_RUNNING)
    index.close()
