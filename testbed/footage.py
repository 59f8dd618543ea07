"""Camera-shaped test footage built once with ffmpeg from Debian's vtest.avi and cached."""

import argparse
import contextlib
import fcntl
import functools
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from testbed.errors import FootageError

log = logging.getLogger(__name__)

# Bump whenever an encoding below changes: the cache lives in a folder named after it.
FOOTAGE_VERSION = "1"
SOURCE_CLIP = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
FONT_FILE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf")
FPS = 25
GOP_FRAMES = 2 * FPS
SHORT_SECONDS = 6
EXTRA_SECONDS = 20  # length of the H.265 and audio variants, to keep the build short

# A machine-readable frame counter: COUNTER_BITS white/black cells, most significant
# bit left, drawn at the top right of the 1920x1080 picture (scaled with the sub stream).
COUNTER_BITS = 12
COUNTER_CELL = 40
COUNTER_X = 1920 - 24 - COUNTER_BITS * COUNTER_CELL
COUNTER_Y = 24
# No B-frames, a fixed 2 s GOP: what the recorder expects from a camera.
_X264_COMMON = (
    "-profile:v", "high", "-bf", "0",
    "-g", str(GOP_FRAMES), "-keyint_min", str(GOP_FRAMES), "-sc_threshold", "0",
)  # fmt: skip

# Turns the temporary output paths of one ffmpeg run into its arguments.
ArgsBuilder = Callable[[dict[str, Path]], Sequence[str]]


@dataclass(frozen=True)
class Footage:
    """Paths of the cached clips; all are Matroska files at 25 fps with a 2 s GOP."""

    main_h264: Path
    sub_h264: Path
    main_h265: Path
    main_h264_aac: Path
    main_h264_pcma: Path
    short_h264: Path
    # Audio that real cameras send, for the recorder's audio tests (each EXTRA_SECONDS long).
    main_h264_ac3: Path
    main_h264_eac3: Path
    main_h264_mp3: Path
    main_h264_opus: Path
    main_h264_pcmu: Path

    @classmethod
    def in_dir(cls, root: Path) -> "Footage":
        """Return the footage paths inside `root` (built or not)."""
        return cls(*(root / f"{field.name}.mkv" for field in fields(cls)))

    def as_dict(self) -> dict[str, Path]:
        """Return clip name to path."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def complete(self) -> bool:
        """Return True if every clip exists."""
        return all(path.is_file() for path in astuple(self))


def default_cache_dir() -> Path:
    """Return `$FSV_CACHE_DIR` or `~/.cache/fsv/footage`."""
    env = os.environ.get("FSV_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "fsv" / "footage"


def ensure_footage(cache_dir: Path | None = None) -> Footage:
    """Build the missing clips (under a file lock, atomically) and return their paths."""
    root = (cache_dir or default_cache_dir()) / f"v{FOOTAGE_VERSION}"
    footage = Footage.in_dir(root)
    if footage.complete():
        return footage
    _check_inputs()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        _remove_partial_files(root)
        _build_missing(footage)
    return footage


def camera_jpeg(frame_no: int = 10) -> bytes:
    """Frame `frame_no` of the source clip as JPEG bytes, like a camera snapshot."""
    clip = cv2.VideoCapture(str(SOURCE_CLIP))
    try:
        clip.set(cv2.CAP_PROP_POS_FRAMES, frame_no)
        ok, frame = clip.read()
    finally:
        clip.release()
    if not ok:
        raise FootageError(f"cannot read frame {frame_no} of {SOURCE_CLIP}")
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise FootageError(f"cannot encode frame {frame_no} of {SOURCE_CLIP} as JPEG")
    return bytes(jpeg.tobytes())


def read_frame_counter(image: NDArray[np.uint8]) -> int:
    """Decode the burned-in frame counter from a decoded frame (gray HxW or HxWxC)."""
    gray = image if image.ndim == 2 else image.mean(axis=2)
    height, width = gray.shape[:2]
    value = 0
    for bit in range(COUNTER_BITS):
        x = (COUNTER_X + (COUNTER_BITS - 1 - bit) * COUNTER_CELL + COUNTER_CELL / 2) * width / 1920
        y = (COUNTER_Y + COUNTER_CELL / 2) * height / 1080
        if gray[int(y), int(x)] > 128:
            value |= 1 << bit
    return value


def _check_inputs() -> None:
    for needed in (SOURCE_CLIP, FONT_FILE):
        if not needed.is_file():
            raise FootageError(f"{needed} is missing (install opencv-doc / fonts-dejavu-core)")
    if shutil.which("ffmpeg") is None:
        raise FootageError("ffmpeg is not on PATH")


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock so parallel test processes build the footage once."""
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_partial_files(root: Path) -> None:
    for partial in root.glob(".*.partial.mkv"):
        partial.unlink(missing_ok=True)


def _build_missing(footage: Footage) -> None:
    if not (footage.main_h264.is_file() and footage.sub_h264.is_file()):
        _encode({"main": footage.main_h264, "sub": footage.sub_h264}, _main_and_sub_args)
    if not footage.main_h265.is_file():
        _encode({"out": footage.main_h265}, lambda tmp: _h265_args(footage.main_h264, tmp))
    main = footage.main_h264
    for codec in AUDIO_ENCODINGS:
        clip = getattr(footage, f"main_h264_{codec}")
        if not clip.is_file():
            _encode({"out": clip}, functools.partial(_audio_args, main, codec))
    if not footage.short_h264.is_file():
        _encode({"out": footage.short_h264}, lambda tmp: _short_args(footage.sub_h264, tmp))


def _encode(outputs: dict[str, Path], make_args: ArgsBuilder) -> None:
    """Run one ffmpeg command into temporary files, then rename them into place."""
    tmp = {
        key: path.with_name(f".{path.stem}.{os.getpid()}.partial.mkv")
        for key, path in outputs.items()
    }
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *make_args(tmp)]
    log.info("building %s", ", ".join(path.name for path in outputs.values()))
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise FootageError(f"ffmpeg failed ({result.returncode}): {result.stderr[-2000:]}")
        for key, path in outputs.items():
            os.replace(tmp[key], path)
    finally:
        for partial in tmp.values():
            partial.unlink(missing_ok=True)


def _text(line: str, y: int) -> str:
    return (
        f"drawtext=fontfile={FONT_FILE}:text='{line}':x=40:y={y}:fontsize=48"
        ":fontcolor=white:box=1:boxcolor=black@0.7:boxborderw=8"
    )


def _counter_filters() -> str:
    """drawbox filters painting the output frame number as binary cells."""
    width, height = COUNTER_BITS * COUNTER_CELL + 16, COUNTER_CELL + 16
    parts = [f"drawbox=x={COUNTER_X - 8}:y={COUNTER_Y - 8}:w={width}:h={height}:color=black:t=fill"]
    for bit in range(COUNTER_BITS):
        x = COUNTER_X + (COUNTER_BITS - 1 - bit) * COUNTER_CELL
        parts.append(
            f"drawbox=x={x}:y={COUNTER_Y}:w={COUNTER_CELL}:h={COUNTER_CELL}:color=white:t=fill"
            f":enable='mod(floor(n/{1 << bit}),2)'"
        )
    return ",".join(parts)


def _main_and_sub_args(tmp: dict[str, Path]) -> list[str]:
    graph = (
        f"[0:v]scale=1920:1080,{_text('src frame %{n}  src pts %{pts}', 40)},fps={FPS},"
        f"{_text('out frame %{n}  out pts %{pts}', 116)},{_counter_filters()},split=2[main][s];"
        "[s]scale=640:360[sub]"
    )
    return [
        "-i", str(SOURCE_CLIP), "-filter_complex", graph,
        "-map", "[main]", "-c:v", "libx264", "-preset", "superfast", *_X264_COMMON,
        "-b:v", "4M", "-maxrate", "4M", "-bufsize", "4M", "-f", "matroska", str(tmp["main"]),
        "-map", "[sub]", "-c:v", "libx264", "-preset", "superfast", *_X264_COMMON,
        "-b:v", "512k", "-maxrate", "512k", "-bufsize", "512k", "-f", "matroska", str(tmp["sub"]),
    ]  # fmt: skip


def _h265_args(main: Path, tmp: dict[str, Path]) -> list[str]:
    x265 = f"bframes=0:keyint={GOP_FRAMES}:min-keyint={GOP_FRAMES}:scenecut=0:log-level=error"
    return [
        "-t", str(EXTRA_SECONDS), "-i", str(main), "-c:v", "libx265", "-preset", "ultrafast",
        "-b:v", "3M", "-maxrate", "3M", "-bufsize", "3M", "-x265-params", x265,
        "-f", "matroska", str(tmp["out"]),
    ]  # fmt: skip


# Footage audio variant -> (sample rate, ffmpeg encoder arguments).
AUDIO_ENCODINGS: dict[str, tuple[int, tuple[str, ...]]] = {
    "aac": (48000, ("-c:a", "aac", "-b:a", "64k")),
    "pcma": (8000, ("-c:a", "pcm_alaw")),
    "pcmu": (8000, ("-c:a", "pcm_mulaw")),
    "ac3": (48000, ("-c:a", "ac3", "-b:a", "96k")),
    "eac3": (48000, ("-c:a", "eac3", "-b:a", "96k")),
    "mp3": (44100, ("-c:a", "libmp3lame", "-b:a", "64k")),
    "opus": (48000, ("-c:a", "libopus", "-b:a", "32k")),
}


def _audio_args(main: Path, codec: str, tmp: dict[str, Path]) -> list[str]:
    rate, encoder = AUDIO_ENCODINGS[codec]
    tone = f"sine=frequency={440 if rate > 8000 else 1000}:sample_rate={rate}"
    encode = [*encoder, "-ar", str(rate)]
    seconds = str(EXTRA_SECONDS)
    return [
        "-t", seconds, "-i", str(main), "-f", "lavfi", "-t", seconds, "-i", tone,
        "-map", "0:v", "-map", "1:a", "-c:v", "copy", *encode, "-ac", "1",
        "-f", "matroska", str(tmp["out"]),
    ]  # fmt: skip


def _short_args(sub: Path, tmp: dict[str, Path]) -> list[str]:
    return [
        "-t",
        str(SHORT_SECONDS),
        "-i",
        str(sub),
        "-c",
        "copy",
        "-f",
        "matroska",
        str(tmp["out"]),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Build (or find) the footage and print where each clip is."""
    parser = argparse.ArgumentParser(
        prog="python -m testbed.footage",
        description="Build the cached test footage from vtest.avi and print the clip paths.",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="cache folder (default: $FSV_CACHE_DIR or ~/.cache/fsv/footage)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.monotonic()
    footage = ensure_footage(args.cache_dir)
    for name, path in footage.as_dict().items():
        print(f"{name}: {path}")
    print(f"ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
