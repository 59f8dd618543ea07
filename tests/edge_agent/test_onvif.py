"""ONVIF discovery and probing: pure decisions, and the real CLI against a real ONVIF camera.

The camera is ipycam (tests/edge_agent/onvif_emulator.py). It binds 0.0.0.0 and sends
multicast, so it and every command talking to it run inside a network namespace made
here that holds nothing but loopback, and is deleted afterwards, whatever happens.
"""

from __future__ import annotations

import os
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
import zeep.exceptions
from lxml import etree  # type: ignore[import-untyped]

from edge_agent.config import parse_config
from edge_agent.errors import OnvifError
from edge_agent.onvif.discovery import (
    DiscoveredDevice,
    build_probe,
    parse_probe_matches,
    probe_interfaces,
)
from edge_agent.onvif.probe import is_auth_fault
from edge_agent.onvif.report import (
    DeviceReport,
    MediaProfile,
    camera_block,
    choose_streams,
    default_camera_id,
    render_camera_block,
    strip_credentials,
)

EMULATOR = Path(__file__).with_name("onvif_emulator.py")
PASSWORD = "Emu-s3cret!pw"
MID = "urn:uuid:0b6f3b5e-1111-4a4a-9c9c-000000000001"


def _profile(token: str, w: int, h: int, codec: str = "H264", kbps: int = 1000) -> MediaProfile:
    return MediaProfile(token, token, codec, w, h, 25.0, kbps, f"rtsp://10.0.0.9/{token}")


# --- pure decisions ---------------------------------------------------------------------


def test_main_is_largest_and_sub_the_largest_smaller_h264() -> None:
    profiles = [
        _profile("mjpeg", 1280, 720, "JPEG"),
        _profile("third", 320, 240),
        _profile("main", 1920, 1080),
        _profile("sub", 640, 360),
    ]
    main, sub = choose_streams(profiles)
    assert (main.token, sub and sub.token) == ("main", "sub")


def test_sub_is_none_without_a_smaller_h264_profile() -> None:
    main, sub = choose_streams(
        [_profile("main", 2560, 1440, "H265"), _profile("s", 704, 576, "H265")]
    )
    assert main.token == "main" and sub is None


def test_main_prefers_h26x_then_bitrate_on_equal_size() -> None:
    profiles = [_profile("jpeg", 1920, 1080, "JPEG", 20000), _profile("low", 1920, 1080, kbps=2000)]
    profiles.append(_profile("high", 1920, 1080, "H.264", 6000))
    assert choose_streams(profiles)[0].token == "high"


def test_no_video_profile_is_an_error() -> None:
    audio_only = MediaProfile("a", "audio")
    with pytest.raises(OnvifError, match="no media profile has a video stream"):
        choose_streams([audio_only, MediaProfile("v", "v", "H264", 1920, 1080)])


def test_strip_credentials_removes_userinfo_and_login_parameters() -> None:
    assert strip_credentials("rtsp://admin:p%40ss@192.168.1.64:554/Streaming/Channels/101") == (
        "rtsp://192.168.1.64:554/Streaming/Channels/101"
    )
    assert strip_credentials("rtsp://[fe80::1]:554/live?channel=1&user=admin&password=x") == (
        "rtsp://[fe80::1]:554/live?channel=1"
    )
    assert strip_credentials("rtsp://10.0.0.9/h264") == "rtsp://10.0.0.9/h264"


def _report(*profiles: MediaProfile, snapshot: str | None = None) -> DeviceReport:
    return DeviceReport("192.168.1.64", 80, "Acme", "IPC-1", "V5.7", "SN1", profiles, snapshot)


def test_camera_block_is_a_valid_config_entry_naming_a_credential() -> None:
    report = _report(_profile("main", 1920, 1080), _profile("sub", 640, 360))
    block = camera_block(report, default_camera_id(report.host), "kitchen_prep")
    assert block == {
        "id": "cam-192-168-1-64",
        "name": "Acme IPC-1 at 192.168.1.64",
        "station": "kitchen_prep",
        "main_url": "rtsp://10.0.0.9/main",
        "sub_url": "rtsp://10.0.0.9/sub",
        "credential": "cam_192_168_1_64",
    }


def test_block_with_password_in_a_uri_path_is_refused() -> None:
    leaky = MediaProfile("m", "m", "H264", 1920, 1080, 25, 4000, "rtsp://h/user=a_password=Sup3rPw")
    with pytest.raises(OnvifError, match="puts the password inside its stream URI"):
        render_camera_block(_report(leaky), "cam-1", "storage", "a", "Sup3rPw")


def test_non_rtsp_main_stream_cannot_make_a_block() -> None:
    http = MediaProfile("m", "m", "H264", 1920, 1080, 25, 4000, "http://h/video.cgi")
    with pytest.raises(OnvifError, match="main_url"):
        camera_block(_report(http), "cam-1", "storage")


def _fault(message: str, code: str, subcodes: list[object] | None = None) -> object:
    return zeep.exceptions.Fault(message, code=code, subcodes=subcodes)  # type: ignore[no-untyped-call]


def test_auth_faults_are_recognised_by_subcode_or_reason() -> None:
    not_authorized = etree.QName("http://www.onvif.org/ver10/error", "NotAuthorized")
    assert is_auth_fault(_fault("x", "env:Sender", [not_authorized]))
    assert is_auth_fault(_fault("Sender not authorized", "s:Receiver"))
    assert not is_auth_fault(_fault("Action not supported", "s:Receiver"))


HIK_STYLE = f"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
 xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
 xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
<env:Header><wsa:MessageID>urn:uuid:aaaa</wsa:MessageID><wsa:RelatesTo>{MID}</wsa:RelatesTo>
<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></env:Header>
<env:Body><d:ProbeMatches><d:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:dev-1</wsa:Address></wsa:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>
<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/HIK%20IPC
 onvif://www.onvif.org/hardware/DS-2CD2143G0-I onvif://www.onvif.org/location/city/hangzhou</d:Scopes>
<d:XAddrs>http://192.168.1.64/onvif/device_service http://[fe80::1]/onvif/device_service</d:XAddrs>
<d:MetadataVersion>10</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>"""


def test_parse_standard_probe_matches() -> None:
    (device,) = parse_probe_matches(HIK_STYLE.encode(), "192.168.1.64", MID)
    assert device.endpoint == "urn:uuid:dev-1"
    assert device.xaddrs[0] == "http://192.168.1.64/onvif/device_service"
    assert (device.scope("name"), device.scope("hardware")) == ("HIK IPC", "DS-2CD2143G0-I")
    assert device.probe_target() == ("192.168.1.64", 80)
    assert "dn:NetworkVideoTransmitter" in device.types


def test_parse_tolerates_bare_probe_match_and_unencoded_spaces() -> None:
    text = HIK_STYLE.replace("<d:ProbeMatches>", "").replace("</d:ProbeMatches>", "")
    text = text.replace("/ProbeMatches</wsa:Action>", "/ProbeMatch</wsa:Action>")
    text = text.replace("name/HIK%20IPC", "name/Gate Cam 2")
    (device,) = parse_probe_matches(text.encode(), "192.168.1.64", MID)
    assert device.scope("name") == "Gate Cam 2"


@pytest.mark.parametrize(
    "data",
    [
        HIK_STYLE.replace(MID, "urn:uuid:someone-elses-probe").encode(),
        HIK_STYLE.replace("discovery/ProbeMatches<", "discovery/Hello<").encode(),
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + HIK_STYLE.encode()[38:],
        b"\x00\xffnot xml at all",
        build_probe(MID),
    ],
    ids=["other-probe", "hello", "dtd", "garbage", "a-probe"],
)
def test_parse_ignores_what_is_not_an_answer_to_our_probe(data: bytes) -> None:
    assert parse_probe_matches(data, "192.168.1.64", MID) == []


def test_interface_must_be_an_ipv4_address() -> None:
    assert probe_interfaces("127.0.0.1") == ["127.0.0.1"]
    with pytest.raises(OnvifError, match="IPv4 address"):
        probe_interfaces("eth0")


def test_device_without_xaddrs_is_probed_at_its_sender_address() -> None:
    assert DiscoveredDevice("urn:uuid:x", "10.0.0.7", ()).probe_target() == ("10.0.0.7", 80)


# --- the real CLI against a real ONVIF camera in a loopback-only namespace --------------


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


@contextmanager
def loopback_namespace() -> Iterator[str]:
    """A fresh network namespace with only `lo`, multicast routed to it; always deleted."""
    if shutil.which("ip") is None:
        pytest.skip("ONVIF namespace tests need iproute2's `ip` command")
    name = f"fsvtest-{secrets.token_hex(4)}"
    added = _ip("netns", "add", name)
    if added.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {added.stderr.strip()}")
    try:
        for args in (
            ("link", "set", "lo", "up"),
            ("link", "set", "lo", "multicast", "on"),
            ("route", "add", "224.0.0.0/4", "dev", "lo"),
        ):
            step = _ip("-n", name, *args)
            assert step.returncode == 0, f"ip -n {name} {' '.join(args)}: {step.stderr}"
        yield name
    finally:
        # Whatever still runs in the namespace was started by this test module.
        for pid in _ip("netns", "pids", name).stdout.split():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        _ip("netns", "delete", name)


def _wait_ready(proc: subprocess.Popen[str], deadline_s: float) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + deadline_s
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2) and proc.stdout.readline().strip() == "READY":
                return
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                pytest.fail(f"ONVIF emulator exited with {proc.returncode}: {err}")
    pytest.fail(f"ONVIF emulator not ready within {deadline_s} s")


@pytest.fixture(scope="module")
def onvif_camera() -> Iterator[tuple[str, int]]:
    """A real ONVIF camera (ipycam) in its own namespace: (namespace, ONVIF port)."""
    with loopback_namespace() as ns:
        port = 20000 + secrets.randbelow(40000)
        env = {**os.environ, "ONVIF_EMULATOR_PASSWORD": PASSWORD}
        cmd = ["ip", "netns", "exec", ns, sys.executable, str(EMULATOR), "--port", str(port)]
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            _wait_ready(proc, 90)
            yield ns, port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def edge_agent(
    ns: str | None, *args: str, password: str = PASSWORD
) -> subprocess.CompletedProcess[str]:
    """Run the real `edge-agent` CLI, inside namespace `ns` unless it is None."""
    prefix = ["ip", "netns", "exec", ns] if ns else []
    env = {**os.environ, "ONVIF_PASSWORD": password}
    cmd = [*prefix, sys.executable, "-m", "edge_agent", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("interface", [["--interface", "127.0.0.1"], []], ids=["lo", "default"])
def test_discover_finds_the_camera(onvif_camera: tuple[str, int], interface: list[str]) -> None:
    ns, port = onvif_camera
    result = edge_agent(ns, "discover", "--timeout", "1", *interface)
    assert result.returncode == 0, result.stderr
    assert f"http://127.0.0.1:{port}/onvif/device_service" in result.stdout
    assert f"edge-agent probe --host 127.0.0.1 --port {port}" in result.stdout
    assert "FSV-Emulator" in result.stdout and "urn:uuid:" in result.stdout


@pytest.mark.slow
def test_discover_without_cameras_says_so() -> None:
    with loopback_namespace() as ns:
        result = edge_agent(ns, "discover", "--timeout", "0.5", "--interface", "127.0.0.1")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no ONVIF device answered from 127.0.0.1 within 0.5 s" in result.stderr


@pytest.mark.slow
def test_probe_prints_a_block_that_check_config_accepts(
    onvif_camera: tuple[str, int], tmp_path: Path
) -> None:
    ns, port = onvif_camera
    result = edge_agent(ns, "probe", "--host", "127.0.0.1", "--port", str(port), "--id", "gate-1")
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert "FSV Test Emulator-1080, firmware" in result.stdout
    assert "1920x1080" in result.stdout and "640x360" in result.stdout
    (block,) = yaml.safe_load(result.stdout)
    assert block["main_url"] == "rtsp://127.0.0.1:8554/video_main"
    assert block["sub_url"] == "rtsp://127.0.0.1:8554/video_sub"
    assert (block["id"], block["credential"]) == ("gate-1", "gate_1")

    config = tmp_path / "edge.yaml"
    head = f"site_id: onvif-test\nstorage:\n  path: {tmp_path / 'rec'}\ncameras:\n"
    config.write_text(head + result.stdout, encoding="utf-8")
    checked = edge_agent(None, "check-config", str(config))
    assert checked.returncode == 0, checked.stderr
    assert "OK (1 cameras" in checked.stdout
    assert parse_config(config.read_text()).camera("gate-1").sub_url == block["sub_url"]


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.slow
def test_probe_with_a_wrong_password_says_the_login_was_refused(
    onvif_camera: tuple[str, int],
) -> None:
    ns, port = onvif_camera
    result = edge_agent(ns, "probe", "--host", "127.0.0.1", "--port", str(port), password="nope")
    line = _one_line_error(result)
    assert line == (
        f"edge-agent: 127.0.0.1:{port}: the camera refused the login of user 'admin' "
        "(wrong user or password)"
    )


@pytest.mark.slow
def test_probe_of_a_closed_port_says_connection_refused(onvif_camera: tuple[str, int]) -> None:
    ns, port = onvif_camera
    result = edge_agent(ns, "probe", "--host", "127.0.0.1", "--port", str(port + 1))
    assert _one_line_error(result) == (
        f"edge-agent: 127.0.0.1:{port + 1}: cannot connect: Connection refused"
    )


@pytest.mark.slow
def test_probe_of_a_silent_host_gives_up_at_the_timeout() -> None:
    # A listener that never answers: the kernel completes the handshake, then nothing.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = edge_agent(
            None, "probe", "--host", "127.0.0.1", "--port", str(port), "--timeout", "1.5"
        )
        elapsed = time.monotonic() - started
    assert "no answer within 1.5 s" in _one_line_error(result)
    # Generous bound (interpreter start-up on a loaded machine), far below the
    # library's own 90 s read timeout that would apply without ours.
    assert elapsed < 30


def test_probe_needs_the_password_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_SUCH_PASSWORD_VAR"}
    cmd = [sys.executable, "-m", "edge_agent", "probe", "--host", "127.0.0.1"]
    cmd += ["--password-env", "NO_SUCH_PASSWORD_VAR"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "environment variable NO_SUCH_PASSWORD_VAR" in result.stderr
