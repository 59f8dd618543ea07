"""One RTSP session per camera stream: builds the live taps and the readers that fill them.

The recorder reads each recorded main stream and hands its packets to a tap; one
SubStreamReader per camera reads the sub stream, unless the sub stream is recorded (a lane
recorder, edge_agent.recording.lanes): then that recorder's packets fill the sub tap. Live
view and detection both subscribe to these taps, so a camera never sees two sessions on the
same stream from this agent.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from edge_agent.config import CameraConfig, EdgeConfig, RecorderConfig
from edge_agent.credentials import CredentialStore
from edge_agent.recording.events import PacketEvent
from edge_agent.uplink.sub_reader import SubStreamReader
from edge_agent.uplink.tap import LiveTap, TapRegistry
from fsv_contract.lanes import lane_id


class Recorder(Protocol):
    """A camera recorder as the taps see it (edge_agent.recording.recorder)."""

    @property
    def camera(self) -> Any:
        """Its CameraConfig."""

    def add_packet_listener(self, callback: Callable[[PacketEvent], None]) -> None:
        """Receive every recorded packet."""


@dataclass
class CameraStreams:
    """The agent's taps and the readers (components) that fill the sub-stream ones."""

    taps: TapRegistry = field(default_factory=TapRegistry)
    readers: list[SubStreamReader] = field(default_factory=list)
    # What a reader built after the start needs (a sub lane that stops recording).
    recorder_config: RecorderConfig | None = None
    credentials: CredentialStore | None = None

    def lane_recording(self, camera: str, recorder: Recorder) -> SubStreamReader | None:
        """The camera's sub lane records from now on: its recorder fills the sub tap (if the
        camera has one). Returns the reader that filled it until now, taken off `readers`:
        the caller stops it before the lane recorder connects (one session per stream)."""
        tap = self.taps.find(camera, "sub")
        if tap is None:
            return None
        _publish_lane(tap, recorder)
        reader = next((r for r in self.readers if r.tap is tap), None)
        if reader is not None:
            self.readers.remove(reader)
        return reader

    def lane_stopped(self, cam: CameraConfig) -> SubStreamReader | None:
        """The camera's sub lane no longer records: a reader (not started; the caller starts
        it once the lane recorder has stopped) fills the sub tap again, or None without one."""
        tap = self.taps.find(cam.id, "sub")
        if tap is None or cam.sub_url is None:
            return None
        if self.recorder_config is None or self.credentials is None:
            raise RuntimeError("streams built without reader settings")
        reader = SubStreamReader(cam, self.recorder_config, self.credentials, tap)
        self.readers.append(reader)
        return reader

    def feed(self, camera: str) -> LiveTap | None:
        """The stream detection reads: the sub stream, else the main stream, else None."""
        for stream in ("sub", "main"):
            tap = self.taps.find(camera, stream)
            if tap is not None:
                return tap
        return None


def build_streams(
    config: EdgeConfig,
    credentials: CredentialStore,
    recorders: Sequence[Recorder],
    *,
    live: bool,
    detect: Collection[str] = (),
) -> CameraStreams:
    """Taps for live view (`live`: every recorded main stream and every sub stream) and for
    the cameras in `detect` (their sub stream; without one, their main stream: the
    recorder's packets, or a reader of its own when the camera is not recorded)."""
    streams = CameraStreams(recorder_config=config.recorder, credentials=credentials)
    recorded = {r.camera.id: r for r in recorders}
    for cam in config.cameras:
        if not cam.enabled or not (live or cam.id in detect):
            continue
        sub_lane = recorded.get(lane_id(cam.id, "sub"))
        if cam.sub_url and sub_lane is not None:  # recorded: its recorder fills the tap
            _recorder_tap(streams, cam.id, sub_lane)
        elif cam.sub_url:
            _reader_tap(streams, cam, "sub", config, credentials)
        if cam.id in recorded and (live or not cam.sub_url):
            tap = streams.taps.add(LiveTap(cam.id, "main"))
            recorded[cam.id].add_packet_listener(tap.publish)
        elif cam.id in detect and cam.id not in recorded and not cam.sub_url:
            _reader_tap(streams, cam, "main", config, credentials)
    return streams


def _recorder_tap(streams: CameraStreams, camera: str, recorder: Recorder) -> None:
    """The sub tap of a camera whose sub lane is recorded: the lane recorder's packets, named
    by the camera (consumers know cameras, not lanes)."""
    _publish_lane(streams.taps.add(LiveTap(camera, "sub")), recorder)


def _publish_lane(tap: LiveTap, recorder: Recorder) -> None:
    camera = tap.camera

    def publish(event: PacketEvent) -> None:
        tap.publish(replace(event, camera=camera))

    recorder.add_packet_listener(publish)


def _reader_tap(
    streams: CameraStreams,
    cam: CameraConfig,
    stream: str,
    config: EdgeConfig,
    credentials: CredentialStore,
) -> None:
    tap = streams.taps.add(LiveTap(cam.id, stream))
    streams.readers.append(SubStreamReader(cam, config.recorder, credentials, tap))
