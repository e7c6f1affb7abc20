"""Child processes of the local run: each in its own process group, stopped with it, even when
the harness dies without cleaning up.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import IO

_SpawnRequest = tuple[
    Sequence[str], dict[str, object], "queue.Queue[tuple[subprocess.Popen[bytes] | None, BaseException | None]]"
]


def die_with_parent() -> None:
    """Runs in the child before exec: its own session, and SIGTERM if the harness dies (Linux prctl)."""
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class _Spawner:
    """Starts child processes from one long-lived thread.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process, so a
    child started from a short-lived request thread (a restart after a crash) would be killed
    at once. Every Popen therefore runs on this thread, which lives as long as the harness.
    """

    def __init__(self) -> None:
        self._requests: queue.Queue[_SpawnRequest] = queue.Queue()
        threading.Thread(target=self._loop, name="spawner", daemon=True).start()

    def _loop(self) -> None:
        while True:
            command, kwargs, reply = self._requests.get()
            try:
                reply.put((subprocess.Popen(command, **kwargs), None))  # type: ignore[call-overload]
            except Exception as err:  # handed back to the caller
                reply.put((None, err))

    def spawn(self, command: Sequence[str], kwargs: dict[str, object]) -> subprocess.Popen[bytes]:
        reply: queue.Queue[tuple[subprocess.Popen[bytes] | None, BaseException | None]] = queue.Queue()
        self._requests.put((command, kwargs, reply))
        proc, err = reply.get()
        if err is not None:
            raise err
        assert proc is not None
        return proc


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def spawn(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    stdout: int | IO[bytes] | None,
    stderr: int | IO[bytes] | None = subprocess.STDOUT,
) -> subprocess.Popen[bytes]:
    """Starts `command` in its own process group, tied to the harness's life (see `die_with_parent`)."""
    global _spawner
    kwargs: dict[str, object] = {
        "env": dict(env),
        "stdin": subprocess.DEVNULL,
        "stdout": stdout,
        "stderr": stderr,
        "preexec_fn": die_with_parent,
    }
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(command, **kwargs)  # type: ignore[call-overload]
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.spawn(command, kwargs)


def terminate(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """Stops a child started by `spawn`: SIGTERM to its group, then SIGKILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
