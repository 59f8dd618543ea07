"""Runs this folder's Playwright scripts (node) against one Chromium shared by the suite.

`SharedChromium` starts chromium_server.mjs once; each script connects to it (pages.mjs)
instead of launching a browser of its own, and closing its connection closes only the
contexts it opened. `run_walk` runs a script and returns its JSON result; a script may ask
for something on the way (a line `{"waiting": ...}`), answered on its stdin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
Answer = Callable[[dict[str, Any]], str]
# walk(script, options, timeout, answer=None): the conftest fixture around run_walk.
Walk = Callable[..., dict[str, Any]]


def node() -> str:
    """The node binary, once playwright-core is installed (fails the test otherwise)."""
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is missing: run `npm ci --prefix tests/browser`")
    found = shutil.which("node")
    assert found, "node is not installed"
    return found


class SharedChromium:
    """One headless Chromium serving every script; started on first use, again if it died."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._ws = ""

    def endpoint(self) -> str:
        """The browser's websocket endpoint (FSV_CHROMIUM_WS of pages.mjs)."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        return self._ws

    def _start(self) -> None:
        self._proc = subprocess.Popen(
            [node(), str(HERE / "chromium_server.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE,
        )
        assert self._proc.stdout is not None
        watchdog = threading.Timer(60, self._proc.kill)  # a browser that never comes up
        watchdog.start()
        try:
            line = self._proc.stdout.readline()
        finally:
            watchdog.cancel()
        assert line.startswith("{"), f"the shared Chromium did not start: {line!r}"
        self._ws = json.loads(line)["ws"]

    def close(self) -> None:
        """Close the browser (its server exits when its stdin closes)."""
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


def run_walk(
    script: str,
    options: Mapping[str, Any],
    timeout: float,
    answer: Answer | None = None,
    chromium: SharedChromium | None = None,
) -> dict[str, Any]:
    """Run `script` with `options`; its last JSON line, which must say ok.

    A line `{"waiting": ...}` is passed to `answer`, whose text goes back as one line on the
    script's stdin. The script is killed after `timeout` seconds.
    """
    env = dict(os.environ)
    if chromium is not None:
        env["FSV_CHROMIUM_WS"] = chromium.endpoint()
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            [node(), str(HERE / script), json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=HERE,
            env=env,
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            proc.kill()

        watchdog = threading.Timer(timeout, kill)  # a hung browser must not hang the suite
        watchdog.start()
        assert proc.stdin is not None and proc.stdout is not None
        result: dict[str, Any] | None = None
        out: list[str] = []
        try:
            for line in proc.stdout:
                if not line.startswith("{"):
                    out.append(line)
                    continue
                message = json.loads(line)
                if "waiting" not in message:
                    result = message
                    continue
                assert answer is not None, f"{script} asked for {message} and has no answer"
                proc.stdin.write(answer(message) + "\n")
                proc.stdin.flush()
            proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdin.close()
        stderr.seek(0)
        err = stderr.read()
    late = f" (killed after {timeout:.0f} s)" if killed.is_set() else ""
    assert result is not None, f"no result from {script}{late}:\n{''.join(out)}\n{err[-3000:]}"
    assert result.get("ok"), f"{script} failed{late}: {result}\n{err[-2000:]}"
    return result
