"""Child processes of the testbed: start a Python module with its log, stop it, kill it."""

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

REPO = Path(__file__).resolve().parents[1]


def spawn_python(
    args: Sequence[str], env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """`python ARGS` from the repository root, stdout and stderr appended to `log_path`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=REPO,
        )


def terminate(proc: subprocess.Popen[bytes], timeout: float, *, group: bool = False) -> bool:
    """SIGTERM, then SIGKILL after `timeout` seconds; reaped on return.

    With `group` the signals go to the process group (a child started with
    `start_new_session=True`). Returns False when the process had to be killed.
    """
    if proc.poll() is None:
        _send(proc, signal.SIGTERM, group)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill(proc, group=group)
            return False
    return True


def kill(proc: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """SIGKILL the process (or its group) if it still runs, and reap it."""
    if proc.poll() is None:
        _send(proc, signal.SIGKILL, group)
    proc.wait()


def _send(proc: subprocess.Popen[bytes], signum: signal.Signals, group: bool) -> None:
    if not group:
        proc.send_signal(signum)
        return
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass  # the whole group is gone already


class ManagedProcess:
    """A fixture process used as a context manager: started on entry, closed on exit."""

    def start(self) -> None:
        """Start the process (and wait until it serves)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the process and release what it holds."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
