"""Read an ONVIF camera's identity, media profiles and stream URIs; print a camera block.

The SOAP side is the `onvif-zeep-async` library (the maintained asyncio fork of
onvif-zeep, with the ONVIF WSDLs bundled and WS-Security UsernameToken digests), not
hand-written SOAP. It runs with `adjust_time=True` so that a camera whose clock is wrong,
common on fresh installs, still accepts the digest, and with `no_cache=True` so that
probing writes no WSDL cache to disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import aiohttp
import zeep.exceptions

from edge_agent.errors import OnvifError
from edge_agent.onvif.report import (
    DeviceReport,
    MediaProfile,
    check_ident,
    choose_streams,
    default_camera_id,
    render_camera_block,
    strip_credentials,
)

__all__ = [
    "DeviceReport",
    "MediaProfile",
    "choose_streams",
    "print_probe",
    "probe",
    "probe_within",
]

PROBE_TIMEOUT_S = 10.0
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
_STREAM_SETUP = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
_AUTH_WORDS = ("notauthorized", "not authorized", "unauthorized", "authenticationfailed")


def _import_onvif() -> Any:
    """Import onvif-zeep-async, undoing the `logging.basicConfig(INFO)` it runs on import.

    Left in place, that call would install a root handler before the agent's own logging
    set-up, which then silently does nothing.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    import onvif

    root.handlers[:] = handlers
    root.setLevel(level)
    return onvif


def _attr(obj: Any, *path: str) -> Any:
    """obj.a.b.c, or None where any step is missing (firmwares omit optional elements)."""
    for name in path:
        if obj is None:
            return None
        obj = getattr(obj, name, None)
    return obj


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _profile(raw: Any, stream_uri: str | None) -> MediaProfile:
    encoder = _attr(raw, "VideoEncoderConfiguration")
    fps = _attr(encoder, "RateControl", "FrameRateLimit")
    return MediaProfile(
        token=_text(_attr(raw, "token")),
        name=_text(_attr(raw, "Name")),
        encoding=_text(_attr(encoder, "Encoding")) or None,
        width=_int(_attr(encoder, "Resolution", "Width")),
        height=_int(_attr(encoder, "Resolution", "Height")),
        fps=float(fps) if isinstance(fps, int | float) else None,
        bitrate_kbps=_int(_attr(encoder, "RateControl", "BitrateLimit")),
        stream_uri=stream_uri,
    )


def is_auth_fault(fault: Any) -> bool:
    """True for a SOAP fault that means "wrong login" (ONVIF subcode ter:NotAuthorized)."""
    subcodes = [getattr(code, "localname", str(code)) for code in (fault.subcodes or [])]
    text = " ".join([_text(fault.message), _text(fault.code), *subcodes]).lower()
    return any(word in text for word in _AUTH_WORDS)


async def _stream_uri(media: Any, token: str) -> str | None:
    try:
        result = await media.GetStreamUri({"StreamSetup": _STREAM_SETUP, "ProfileToken": token})
    except zeep.exceptions.Fault as e:
        if is_auth_fault(e):
            raise
        return None  # e.g. a metadata-only profile; the others may still stream
    uri = _text(_attr(result, "Uri"))
    return strip_credentials(uri) if uri else None


async def _snapshot_uri(media: Any, token: str) -> str | None:
    try:
        result = await media.GetSnapshotUri({"ProfileToken": token})
    except zeep.exceptions.Fault as e:
        if is_auth_fault(e):
            raise
        return None  # snapshots are optional in ONVIF Profile S
    uri = _text(_attr(result, "Uri"))
    return strip_credentials(uri) if uri else None


async def _read_device(camera: Any, host: str, port: int) -> DeviceReport:
    where = f"{host}:{port}"
    await camera.update_xaddrs()
    devicemgmt = await camera.create_devicemgmt_service()
    info = await devicemgmt.GetDeviceInformation()
    if MEDIA_NS not in camera.xaddrs:
        raise OnvifError(f"{where}: the device offers no ONVIF media service (no video profiles)")
    media = await camera.create_media_service()
    raw_profiles = list(await media.GetProfiles() or [])
    if not raw_profiles:
        raise OnvifError(f"{where}: the device reports no media profiles")
    profiles = []
    for raw in raw_profiles:
        has_video = _attr(raw, "VideoEncoderConfiguration") is not None
        uri = await _stream_uri(media, _text(raw.token)) if has_video else None
        profiles.append(_profile(raw, uri))
    main, _ = choose_streams(profiles, where)
    return DeviceReport(
        host=host,
        port=port,
        manufacturer=_text(_attr(info, "Manufacturer")),
        model=_text(_attr(info, "Model")),
        firmware=_text(_attr(info, "FirmwareVersion")),
        serial=_text(_attr(info, "SerialNumber")),
        profiles=tuple(profiles),
        snapshot_uri=await _snapshot_uri(media, main.token),
    )


def _os_reason(err: OSError) -> str:
    if err.errno is not None and err.errno > 0:
        return os.strerror(err.errno)
    return err.strerror or str(err) or type(err).__name__


def _no_answer(seconds: float | None) -> str:
    within = f"within {seconds:g} s " if seconds is not None else ""
    return f"no answer {within}(camera off, wrong address or port, or blocked by a firewall)"


def translate_error(err: BaseException, where: str, user: str) -> OnvifError:
    """One clear line for a failure of the ONVIF conversation with `where`."""
    # The library's ONVIFError wraps the real failure; judge by that one.
    known = (OSError, aiohttp.ClientError, zeep.exceptions.Error)
    cause = err if isinstance(err, known) or err.__cause__ is None else err.__cause__
    if isinstance(cause, TimeoutError):
        return OnvifError(f"{where}: {_no_answer(None)}")
    if isinstance(cause, aiohttp.ClientConnectorError):
        return OnvifError(f"{where}: cannot connect: {_os_reason(cause.os_error)}")
    if isinstance(cause, aiohttp.ClientError | OSError):
        reason = _os_reason(cause) if isinstance(cause, OSError) else str(cause)
        return OnvifError(f"{where}: connection failed: {reason or type(cause).__name__}")
    refused = f"{where}: the camera refused the login of user {user!r} (wrong user or password)"
    if isinstance(cause, zeep.exceptions.Fault):
        if is_auth_fault(cause):
            return OnvifError(refused)
        return OnvifError(f"{where}: the camera answered with a SOAP fault: {cause.message}")
    if isinstance(cause, zeep.exceptions.TransportError):
        if cause.status_code in (401, 403):
            return OnvifError(refused)
        return OnvifError(
            f"{where}: HTTP {cause.status_code} from the device service "
            "(is this the camera's ONVIF port?)"
        )
    return OnvifError(f"{where}: not a usable ONVIF answer: {cause}")


async def probe(host: str, port: int, user: str, password: str) -> DeviceReport:
    """Read device information, profiles, stream URIs and the snapshot URI of a camera.

    Raises OnvifError with one clear line for an unreachable host, a refused login, or a
    device without media service or profiles. Bound the time with `asyncio.timeout` (or
    use `probe_within`): the library's own limits are tens of seconds.
    """
    onvif = _import_onvif()
    camera = onvif.ONVIFCamera(host, port, user, password, no_cache=True, adjust_time=True)
    try:
        return await _read_device(camera, host, port)
    except OnvifError:
        raise
    except (
        TimeoutError,
        OSError,
        aiohttp.ClientError,
        zeep.exceptions.Error,
        onvif.ONVIFError,
    ) as e:
        raise translate_error(e, f"{host}:{port}", user) from e
    finally:
        await camera.close()


async def probe_within(
    seconds: float, host: str, port: int, user: str, password: str
) -> DeviceReport:
    """`probe`, turned into an OnvifError if the camera has not answered in `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            return await probe(host, port, user, password)
    except TimeoutError as e:
        raise OnvifError(f"{host}:{port}: {_no_answer(seconds)}") from e


def print_probe(
    host: str,
    port: int,
    user: str,
    password_env: str,
    camera_id: str | None,
    station: str,
    timeout: float = PROBE_TIMEOUT_S,
) -> int:
    """CLI `probe`: print the camera's profiles and a camera block to paste into a config."""
    password = os.environ.get(password_env)
    if password is None:
        print(
            f"edge-agent: put the camera password in the environment variable {password_env} "
            "(it is never taken from the command line)",
            file=sys.stderr,
        )
        return 2
    camera_id = camera_id or default_camera_id(host)
    problems = check_ident("--id", camera_id) + check_ident("--station", station)
    if timeout <= 0:
        problems.append("--timeout must be positive")
    if problems:
        print(f"edge-agent: {'; '.join(problems)}", file=sys.stderr)
        return 2
    report = asyncio.run(probe_within(timeout, host, port, user, password))
    print(render_camera_block(report, camera_id, station, user, password), end="")
    return 0
