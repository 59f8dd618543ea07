"""A camera's streams: the direct stream lookup answers as PyAV's own does."""

from typing import Any

import pytest
from av.container.streams import StreamContainer

from edge_agent.config import RecorderConfig
from edge_agent.recording import streams as camera_streams
from edge_agent.recording.streams import open_camera
from testbed.rtsp import RtspServer


def test_stream_lookup_answers_as_pyav_does(rtsp_server: RtspServer) -> None:
    with open_camera(rtsp_server.url("aac"), RecorderConfig()) as container:
        assert StreamContainer.__getitem__ is camera_streams._stream_at  # open_camera set it
        found = container.streams
        video, audio = found.video[0], found.audio[0]
        pyav = camera_streams._PYAV_GETITEM
        keys: list[Any] = [0, 1, -1, -2, True, (0, 1), [1], audio]  # PyAV takes them all
        for key in keys:
            assert found[key] == pyav(found, key), key
        assert [found[0], found[1], found[-1]] == [video, audio, audio]
        for key in (2, -3):
            with pytest.raises(IndexError):
                found[key]
            with pytest.raises(IndexError):
                pyav(found, key)
        assert found.get(video=0) == [video] and found.get(1) == [audio]  # get() is PyAV's
        kinds = set()
        for packet in container.demux(video, audio):  # the demuxer's own lookup, per packet
            assert packet.stream is found[packet.stream_index]
            kinds.add(packet.stream.type)
            if kinds == {"video", "audio"}:
                break
        assert kinds == {"video", "audio"}
