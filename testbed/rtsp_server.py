"""Standalone RTSP test server looping Matroska files forever without re-encoding.

Run it with Debian's /usr/bin/python3 (it needs the `gi` GstRtspServer bindings):

    /usr/bin/python3 testbed/rtsp_server.py --port 8554 --path cam1=/footage/main_h264.mkv

Each path is one shared media: every client sees the same live stream, a client's PLAY
never rewinds it (the media answers "not seekable") and the file loops through GStreamer
segment seeks, so RTP timestamps keep rising and no EOS is ever sent.
"""

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gi  # type: ignore[import-not-found, unused-ignore]

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # type: ignore[import-not-found, unused-ignore]  # noqa: E402

# Before any subclass is defined: GObject needs GstMessage's type for the vfunc signature.
Gst.init(None)
log = logging.getLogger("rtsp_server")

# Codec name (ffprobe) to the parse ! payload chain; payN and the payload type are added later.
VIDEO_CHAINS = {
    "h264": ("h264parse", "rtph264pay config-interval=-1", 96),
    "hevc": ("h265parse", "rtph265pay config-interval=-1", 96),
}
AUDIO_CHAINS = {
    "aac": ("aacparse", "rtpmp4gpay", 97),
    "pcm_alaw": ("", "rtppcmapay", 8),
    "pcm_mulaw": ("", "rtppcmupay", 0),
    "ac3": ("ac3parse", "rtpac3pay", 97),
    "mp3": ("mpegaudioparse", "rtpmpapay", 14),
    "opus": ("opusparse", "rtpopuspay", 97),
}


UDP_PORT_MIN, UDP_PORT_MAX = 40000, 59999  # RTP/RTCP ports with --udp


@dataclass(frozen=True)
class Mount:
    """One served path: the URL path name and the file looped behind it."""

    name: str
    file: Path


def probe_codecs(file: Path) -> list[tuple[str, str]]:
    """Return (codec_type, codec_name) for each stream of `file`, read with ffprobe."""
    cmd = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "json"]
    result = subprocess.run([*cmd, str(file)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"ffprobe cannot read {file}: {result.stderr.strip()}")
    return [(s["codec_type"], s["codec_name"]) for s in json.loads(result.stdout)["streams"]]


def launch_line(file: Path, codecs: Sequence[tuple[str, str]]) -> str:
    """Build the demux ! parse ! payload launch line for the video/audio `codecs` of `file`."""
    chosen: dict[str, tuple[str, str, int]] = {}
    for kind, codec in codecs:
        chains = {"video": VIDEO_CHAINS, "audio": AUDIO_CHAINS}.get(kind)
        if chains is None or kind in chosen:
            continue  # one video and one audio stream at most, like a camera
        if codec not in chains:
            raise SystemExit(f"{file}: unsupported {kind} codec {codec}")
        chosen[kind] = chains[codec]
    if not chosen:
        raise SystemExit(f"{file}: no video or audio stream")
    # With audio and video, a queue per branch so one never blocks the demuxer for the other.
    queue = " ! queue" if len(chosen) > 1 else ""
    branches = [
        f"demux.{kind}_0{queue}{f' ! {parse}' if parse else ''} ! {pay} name=pay{index} pt={pt}"
        for index, (kind, (parse, pay, pt)) in enumerate(chosen.items())
    ]
    location = str(file).replace("\\", "\\\\").replace('"', '\\"')
    return f'( filesrc location="{location}" ! matroskademux name=demux {" ".join(branches)} )'


def _refuse_seeking(_pad: Any, info: Any) -> Any:
    """Answer SEEKING queries with "not seekable", so a PLAY with a Range never rewinds.

    A new SEEKING query already holds seekable=FALSE and Python cannot write to the
    query, so the probe only marks it handled (the query then returns TRUE as is).
    """
    query = info.get_query()
    if query is not None and query.type == Gst.QueryType.SEEKING:
        return Gst.PadProbeReturn.HANDLED
    return Gst.PadProbeReturn.OK


class LoopingMedia(GstRtspServer.RTSPMedia):  # type: ignore[misc]
    """A media that loops its file with segment seeks and never reaches EOS."""

    __gtype_name__ = "FsvLoopingMedia"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._offset = 0  # ns added to running time so far, see _loop()

    def start_looping(self) -> None:
        """Make the media unseekable and queue the first, flushing segment seek.

        Called once the media is constructed, before any data flows: matroskademux defers
        a seek that arrives before its headers are read, so the very first buffer already
        belongs to a looping segment (no EOS, no replayed first frame).
        """
        for index in range(self.n_streams()):
            pay = self.get_stream(index).get_srcpad()
            pay.add_probe(Gst.PadProbeType.QUERY_UPSTREAM, _refuse_seeking)
        self._seek(Gst.SeekFlags.FLUSH)

    def _demuxer(self) -> Any:
        return self.get_element().get_by_name("demux")

    def _seek(self, extra: Any) -> None:
        flags = Gst.SeekFlags.SEGMENT | extra
        if not self._demuxer().seek(
            1.0, Gst.Format.TIME, flags, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1
        ):
            log.error("segment seek failed on %s", self.get_element().get_name())

    def _loop(self, message: Any) -> None:
        """Start the next pass with a non-flushing segment seek, so running time goes on.

        The demuxer bases the next pass on the last frame's start, not its end, which
        would repeat one timestamp; a pad offset adds the missing frame duration.
        """
        _format, done = message.parse_segment_done()
        demux = self._demuxer()
        ok, position = demux.query_position(Gst.Format.TIME)
        if ok and done > position:
            self._offset += done - position
            for pad in demux.srcpads:
                pad.set_offset(self._offset)
        self._seek(Gst.SeekFlags.NONE)

    def do_query_stop(self, _stop: Any) -> bool:
        """Report no stop, so the SDP and PLAY announce an open range (`npt=0-`) like a camera.

        With the file's duration in the Range, GStreamer clients stop at the file's end.
        """
        return False

    def do_query_position(self, _position: Any) -> bool:
        """Report no position (the range then starts at 0)."""
        return False

    def do_handle_message(self, message: Any) -> bool:
        """Loop on SEGMENT_DONE; hand every other message to RTSPMedia."""
        if message.type == Gst.MessageType.SEGMENT_DONE:
            self._loop(message)
            return True
        result: bool = GstRtspServer.RTSPMedia.do_handle_message(self, message)
        return result


def _loopback_pool(bind: str) -> Any:
    """An address pool so RTP/RTCP over UDP binds `bind` too, not 0.0.0.0."""
    pool = GstRtspServer.RTSPAddressPool()
    if not pool.add_range(bind, bind, UDP_PORT_MIN, UDP_PORT_MAX, 0):
        raise SystemExit(f"cannot use {bind} for UDP")
    return pool


def launch_lines(files: Sequence[Path]) -> dict[Path, str]:
    """Probe each distinct file once, in parallel (32 cameras often share one file)."""
    unique = sorted(set(files))
    with ThreadPoolExecutor(max_workers=8) as pool:
        codecs = list(pool.map(probe_codecs, unique))
    return {file: launch_line(file, found) for file, found in zip(unique, codecs, strict=True)}


def _factory(launch: str, udp_pool: Any | None) -> Any:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    factory.set_media_gtype(LoopingMedia)
    factory.connect("media-constructed", lambda _f, media: media.start_looping())
    factory.set_eos_shutdown(False)
    protocols = GstRtsp.RTSPLowerTrans.TCP
    if udp_pool is not None:
        protocols |= GstRtsp.RTSPLowerTrans.UDP
        factory.set_address_pool(udp_pool)
    factory.set_protocols(protocols)
    return factory


def _watch_parent(loop: Any) -> None:
    """Quit when the process that started us dies (a killed test run leaves no server)."""
    parent = os.getppid()

    def check() -> bool:
        if os.getppid() != parent:
            log.info("parent %d is gone, stopping", parent)
            loop.quit()
            return GLib.SOURCE_REMOVE  # type: ignore[no-any-return]
        return GLib.SOURCE_CONTINUE  # type: ignore[no-any-return]

    GLib.timeout_add_seconds(1, check)


def serve(bind: str, port: int, mounts: Sequence[Mount], udp: bool, exit_with_parent: bool) -> int:
    """Serve `mounts` until SIGTERM/SIGINT; print `READY <port>` once listening."""
    server = GstRtspServer.RTSPServer()
    server.set_address(bind)
    server.set_service(str(port))
    server.set_backlog(128)  # a recorder connects all its cameras at once
    points = server.get_mount_points()
    udp_pool = _loopback_pool(bind) if udp else None
    launches = launch_lines([mount.file for mount in mounts])
    for mount in mounts:
        points.add_factory(f"/{mount.name}", _factory(launches[mount.file], udp_pool))
    if server.attach(None) == 0:
        log.error("cannot listen on %s:%d", bind, port)
        return 2
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, _quit, loop)
    if exit_with_parent:
        _watch_parent(loop)
    print(f"READY {server.get_bound_port()}", flush=True)
    log.info(
        "serving %s on rtsp://%s:%d",
        ", ".join(m.name for m in mounts),
        bind,
        server.get_bound_port(),
    )
    loop.run()
    log.info("stopped")
    return 0


def _quit(loop: Any) -> bool:
    loop.quit()
    return GLib.SOURCE_REMOVE  # type: ignore[no-any-return]


def _mount(text: str) -> Mount:
    name, sep, file = text.partition("=")
    if not sep or not name or not file:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    if not Path(file).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {file}")
    return Mount(name.strip("/"), Path(file))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description="Loop Matroska files over RTSP (no re-encoding).")
    parser.add_argument(
        "--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8554, help="RTSP port; 0 picks a free one")
    parser.add_argument(
        "--path", type=_mount, action="append", required=True, help="NAME=FILE, repeatable"
    )
    parser.add_argument(
        "--udp", action="store_true", help="also offer RTP over UDP (TCP is always offered)"
    )
    parser.add_argument(
        "--no-exit-with-parent",
        dest="exit_with_parent",
        action="store_false",
        help="keep serving when the parent process dies (default: stop)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s rtsp_server %(message)s"
    )
    return serve(args.bind, args.port, args.path, args.udp, args.exit_with_parent)


if __name__ == "__main__":
    raise SystemExit(main())
