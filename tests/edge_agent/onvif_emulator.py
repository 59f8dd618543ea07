"""A real ONVIF camera (ipycam) serving device, media and WS-Discovery, for namespace tests.

Run it only inside a network namespace that holds nothing but loopback, e.g.
`ip netns exec NS python tests/edge_agent/onvif_emulator.py --port 8080 --user admin`,
with the password in the environment variable named by --password-env. It refuses to
start when the namespace has any other interface, because ipycam binds 0.0.0.0 and
multicasts Hello/Bye/ProbeMatch messages.

Only ipycam's ONVIF parts are started (its HTTP SOAP handler and WS-Discovery server,
exactly as `IPCamera.start()` builds them); its video outputs (go2rtc push, native RTSP
via ffmpeg, MJPEG, WebRTC) are left off, so the stream URIs it advertises are not served.
One static frame feeds the snapshot endpoint. Prints `READY` once both servers listen;
stops cleanly (sending its Bye) on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from types import FrameType


def _only_loopback() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def main() -> int:
    """Start the emulator and serve until SIGTERM/SIGINT; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="ONVIF HTTP port")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password-env", default="ONVIF_EMULATOR_PASSWORD")
    parser.add_argument("--name", default="FSV-Emulator")
    parser.add_argument("--rtsp-port", type=int, default=8554)
    args = parser.parse_args()

    if not _only_loopback():
        print("refusing to run: this network namespace has more than loopback", file=sys.stderr)
        return 2
    password = os.environ.get(args.password_env, "")
    if not password:
        print(f"environment variable {args.password_env} is empty", file=sys.stderr)
        return 2

    # Heavy imports (opencv, numpy) only after the guard above.
    import numpy as np
    from ipycam import CameraConfig, IPCamera
    from ipycam.camera import ReusableThreadingTCPServer
    from ipycam.discovery import WSDiscoveryServer
    from ipycam.http import IPCameraHTTPHandler

    config = CameraConfig(
        name=args.name,
        manufacturer="FSV Test",
        model="Emulator-1080",
        serial_number="EMU-0001",
        local_ip="127.0.0.1",
        onvif_port=args.port,
        rtsp_port=args.rtsp_port,
        username=args.user,
        password=password,
        show_timestamp=False,
    )
    camera = IPCamera(config)
    ramp = np.linspace(0, 255, config.main_width, dtype=np.uint8)
    camera.stream(np.dstack([np.tile(ramp, (config.main_height, 1))] * 3))

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    discovery = WSDiscoveryServer(camera.onvif)
    discovery.start()
    IPCameraHTTPHandler.camera = camera
    http_server = ReusableThreadingTCPServer(("", config.onvif_port), IPCameraHTTPHandler)
    http_thread = threading.Thread(
        target=http_server.serve_forever, name="onvif-emulator-http", daemon=True
    )
    http_thread.start()
    print("READY", flush=True)
    try:
        stop.wait()
    finally:
        discovery.stop()
        http_server.shutdown()
        http_server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
