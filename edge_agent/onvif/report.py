"""Probe results and the pure decisions on them: main/sub choice, URI hygiene, camera block."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError

from edge_agent.config import IDENT, CameraConfig, dump_camera_block
from edge_agent.errors import OnvifError

# Query parameters some firmwares use to carry the login inside a stream URI.
_SECRET_PARAMS = frozenset(
    {"user", "username", "usr", "password", "passwd", "pwd", "pass", "loginuse", "loginpas"}
)
# Shorter passwords are too likely to occur by chance in a path ("/Channels/101").
_MIN_GUARDED_PASSWORD = 4
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class MediaProfile:
    """One ONVIF media profile: its video encoder settings and its RTSP stream URI."""

    token: str
    name: str
    encoding: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bitrate_kbps: int | None = None
    stream_uri: str | None = None

    @property
    def pixels(self) -> int:
        """Width times height; 0 when the camera did not say."""
        return (self.width or 0) * (self.height or 0)

    @property
    def codec(self) -> str:
        """Encoding normalised for comparison: "H264", "H265", "JPEG", ... or ""."""
        return (self.encoding or "").upper().replace(".", "").replace("-", "")


@dataclass(frozen=True)
class DeviceReport:
    """What a camera told us about itself, with credentials stripped from every URI."""

    host: str
    port: int
    manufacturer: str
    model: str
    firmware: str
    serial: str
    profiles: tuple[MediaProfile, ...]
    snapshot_uri: str | None = None


def choose_streams(
    profiles: list[MediaProfile] | tuple[MediaProfile, ...], where: str = "camera"
) -> tuple[MediaProfile, MediaProfile | None]:
    """Pick the main (recording) and sub (live view, detection) profiles.

    Main is the largest resolution (ties: H.264/H.265 first, then the higher bitrate).
    Sub is the largest H.264 profile smaller than main: the detector and the uplink want
    a small stream, but of the small ones the sharpest; H.264 because every browser and
    the relay handle it. None when the camera has no such profile.
    """
    candidates = [p for p in profiles if p.stream_uri and p.pixels > 0]
    if not candidates:
        raise OnvifError(f"{where}: no media profile has a video stream with a known resolution")
    main = max(
        candidates, key=lambda p: (p.pixels, p.codec in ("H264", "H265"), p.bitrate_kbps or 0)
    )
    smaller = [p for p in candidates if p.pixels < main.pixels and p.codec == "H264"]
    sub = max(smaller, key=lambda p: (p.pixels, p.bitrate_kbps or 0), default=None)
    return main, sub


def strip_credentials(uri: str) -> str:
    """The URI without a user:password@ part and without login query parameters."""
    parts = urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        kept = [
            (k, v)
            for k, v in parse_qsl(query, keep_blank_values=True)
            if k.lower() not in _SECRET_PARAMS
        ]
        query = urlencode(kept, safe="/:")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def default_camera_id(host: str) -> str:
    """A config id derived from the camera address, e.g. "cam-192-168-1-64"."""
    slug = re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-")
    return f"cam-{slug}"[:63].rstrip("-_")


def credential_name(camera_id: str) -> str:
    """The credential name the block refers to: the camera id with '_' for '-'."""
    return camera_id.replace("-", "_")[:64]


def check_ident(label: str, value: str) -> list[str]:
    """[] if `value` is a valid config identifier, else one problem naming `label`."""
    if re.match(IDENT, value):
        return []
    return [f"{label} {value!r} must be 1-63 lower-case letters, digits, '_' or '-'"]


def camera_block(report: DeviceReport, camera_id: str, station: str) -> dict[str, Any]:
    """The `cameras:` entry for this camera, validated against CameraConfig."""
    main, sub = choose_streams(report.profiles, f"{report.host}:{report.port}")
    label = " ".join(x for x in (report.manufacturer, report.model) if x) or "ONVIF camera"
    block: dict[str, Any] = {
        "id": camera_id,
        "name": _one_line(f"{label} at {report.host}")[:200],
        "station": station,
        "main_url": main.stream_uri,
    }
    if sub is not None:
        block["sub_url"] = sub.stream_uri
    block["credential"] = credential_name(camera_id)
    try:
        CameraConfig.model_validate(block)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise OnvifError(
            f"{report.host}:{report.port}: cannot make a camera block: {field}: {first['msg']}"
        ) from e
    return block


def check_no_password(block: dict[str, Any], report: DeviceReport, password: str) -> None:
    """Refuse a block whose URLs still hold the password (e.g. inside a URI path)."""
    if len(password) < _MIN_GUARDED_PASSWORD:
        return
    urls = [block.get("main_url"), block.get("sub_url"), report.snapshot_uri]
    urls += [p.stream_uri for p in report.profiles]
    secrets = {password, quote(password, safe="")}
    for url in filter(None, urls):
        if any(secret in url for secret in secrets):
            raise OnvifError(
                f"{report.host}:{report.port}: the camera puts the password inside its stream "
                "URI; not printing it, write the block by hand without the password"
            )


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def _profile_line(profile: MediaProfile, role: str) -> str:
    size = f"{profile.width}x{profile.height}" if profile.pixels else "?x?"
    fps = f"{profile.fps:g} fps" if profile.fps else "? fps"
    rate = f"{profile.bitrate_kbps} kbit/s" if profile.bitrate_kbps else "? kbit/s"
    uri = profile.stream_uri or "(no stream URI)"
    text = f"#   {profile.token} ({profile.name}): {profile.encoding or '?'} {size} {fps} {rate}"
    return _one_line(f"{text} {uri}") + (f"  <- {role}" if role else "")


def render_camera_block(
    report: DeviceReport, camera_id: str, station: str, user: str, password: str
) -> str:
    """YAML comments describing the camera, then the block to paste under `cameras:`."""
    block = camera_block(report, camera_id, station)
    check_no_password(block, report, password)
    main, sub = choose_streams(report.profiles)
    identity = " ".join(x for x in (report.manufacturer, report.model) if x) or "ONVIF device"
    probed = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"# {identity}, firmware {report.firmware or '?'}, serial {report.serial or '?'}",
        f"# ONVIF {report.host}:{report.port}, probed {probed}; profiles:",
    ]
    for profile in report.profiles:
        role = "main" if profile is main else "sub" if profile is sub else ""
        lines.append(_profile_line(profile, role))
    if report.snapshot_uri:
        lines.append(f"# snapshot: {report.snapshot_uri}")
    key = block["credential"].upper()
    lines.append(
        f"# login {user!r}: define credential {block['credential']!r} with EDGE_CRED_{key}_USER"
        f" / EDGE_CRED_{key}_PASSWORD or in the credentials file"
    )
    return "\n".join(_one_line(line) for line in lines) + "\n" + dump_camera_block(block)
