"""Controller for the GStreamer RTSP test server: start it, wait for READY, stop, restart."""

import logging
import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from testbed.errors import RtspServerError
from testbed.footage import Footage
from testbed.ports import LOOPBACK
from testbed.processes import ManagedProcess, kill, terminate

log = logging.getLogger(__name__)

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
# Debian's interpreter: the venv has no `gi` (PyGObject) bindings for GstRtspServer.
SYSTEM_PYTHON = Path("/usr/bin/python3")


def camera_paths(footage: Footage) -> dict[str, Path]:
    """The standard test cameras: two H.264 main/sub pairs, H.265, audio variants, a short clip."""
    return {
        "cam1": footage.main_h264,
        "cam1_sub": footage.sub_h264,
        "cam2": footage.main_h264,
        "cam2_sub": footage.sub_h264,
        "h265": footage.main_h265,
        "aac": footage.main_h264_aac,
        "pcma": footage.main_h264_pcma,
        "pcmu": footage.main_h264_pcmu,
        "ac3": footage.main_h264_ac3,
        "mp3": footage.main_h264_mp3,
        "opus": footage.main_h264_opus,
        "short": footage.short_h264,
    }


class RtspServer(ManagedProcess):
    """One RTSP server process looping `paths` (name -> Matroska file) on 127.0.0.1.

    Without a `port` the server binds a free one on first start; `start()` after `stop()`
    binds the same port again, so clients see an outage and then the camera coming back.
    """

    def __init__(
        self,
        paths: Mapping[str, Path],
        port: int | None = None,
        *,
        udp: bool = False,
        ready_timeout: float = 20.0,
    ) -> None:
        if not paths:
            raise ValueError("an RTSP server needs at least one path")
        self.paths = dict(paths)
        self.host = LOOPBACK
        self._port = port
        self.udp = udp
        self.ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def port(self) -> int:
        """The RTSP port (known once the server started, or given)."""
        if self._port is None:
            raise RtspServerError("the RTSP server has not started yet, its port is unknown")
        return self._port

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def url(self, name: str) -> str:
        """The rtsp:// URL of path `name`."""
        if name not in self.paths:
            raise KeyError(f"no RTSP path {name!r}; known: {', '.join(sorted(self.paths))}")
        return f"rtsp://{self.host}:{self.port}/{name}"

    def start(self) -> None:
        """Start the server (on the same port as before, if it ran) and wait until it listens."""
        if self.running:
            raise RtspServerError(f"RTSP server already running on port {self._port}")
        self._close_log()
        self._stderr = tempfile.TemporaryFile(prefix="fsv-rtsp-")
        self._proc = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # its own process group, killed as a whole
        )
        try:
            self._port = self._wait_ready(self._proc)
        except BaseException:
            self._kill()
            raise
        log.info("RTSP server ready on %s:%d (pid %d)", self.host, self._port, self._proc.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after `timeout`); the port stays reserved."""
        proc = self._proc
        if proc is None:
            return
        if not terminate(proc, timeout, group=True):
            log.warning("RTSP server %d ignored SIGTERM and was killed", proc.pid)
        self._kill()

    def stderr_tail(self, limit: int = 4000) -> str:
        """The last `limit` bytes the server logged, also after `stop()`."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - limit))
        return self._stderr.read().decode(errors="replace")

    def close(self) -> None:
        """Stop the server and drop its log."""
        self.stop()
        self._close_log()

    def _command(self) -> list[str]:
        cmd = [str(SYSTEM_PYTHON), str(SERVER_SCRIPT), "--bind", self.host]
        cmd += ["--port", str(self._port or 0)]
        for name, file in self.paths.items():
            cmd += ["--path", f"{name}={file}"]
        if self.udp:
            cmd.append("--udp")
        return cmd

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> int:
        """Read stdout until `READY <port>`; fail with the stderr tail on exit or timeout."""
        assert proc.stdout is not None
        deadline = time.monotonic() + self.ready_timeout
        output = b""
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while b"\n" not in output:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RtspServerError(self._failure(f"no READY within {self.ready_timeout} s"))
                if not selector.select(left):
                    continue
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    proc.wait(5)
                    raise RtspServerError(self._failure(f"exited with {proc.returncode}"))
                output += chunk
        line = output.split(b"\n", 1)[0].decode(errors="replace").split()
        if len(line) != 2 or line[0] != "READY" or not line[1].isdigit():
            raise RtspServerError(self._failure(f"printed {line!r} instead of READY <port>"))
        return int(line[1])

    def _failure(self, what: str) -> str:
        time.sleep(0.2)  # let the last log lines reach the file
        return f"RTSP server {what}; stderr:\n{self.stderr_tail()}"

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            kill(proc, group=True)
            if proc.stdout is not None:
                proc.stdout.close()

    def _close_log(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
