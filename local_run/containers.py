"""Several warm containers of one function, as Lambda runs them when invocations overlap.

`FunctionPool` hands each invocation to an idle container (a `FunctionHost`, one process each),
the one used last first as Lambda reuses warm sandboxes, and waits for one when all are busy:
at most `len(containers)` invocations of the function run at once. It serves the Invoke API
itself (moto routes the target's Invokes to `url`) and offers what the harness reads of a
host: the log lines of all its containers in one list, in the order the harness read them,
and the sums of their counters.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any

from local_run.runtime_api import INVOKE_PREFIX, FunctionHost, InvokeResult, LoopbackServer, QuietHandler, invoke_reply


class FunctionPool:
    def __init__(self, containers: Sequence[FunctionHost]) -> None:
        if not containers:
            raise ValueError("a function needs at least one container")
        first = containers[0]
        if any(c.logs is not first.logs for c in containers):
            raise ValueError("the containers of a pool must share one log list")
        self.containers = list(containers)
        self.name, self.arn, self.command = first.name, first.arn, first.command
        self.timeout_s = first.timeout_s
        self.max_request_bytes = first.max_request_bytes
        self.logs = first.logs
        self._idle: queue.LifoQueue[FunctionHost] = queue.LifoQueue()
        for c in reversed(self.containers):
            self._idle.put(c)
        self._server = LoopbackServer(self._handler_class())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name=f"pool-{self.name}", daemon=True).start()

    # ---- what the harness reads of a host ----
    @property
    def invocations(self) -> int:
        return sum(c.invocations for c in self.containers)

    @property
    def function_errors(self) -> int:
        return sum(c.function_errors for c in self.containers)

    @property
    def timeouts(self) -> int:
        return sum(c.timeouts for c in self.containers)

    @property
    def filtered_lines(self) -> int:
        return sum(c.filtered_lines for c in self.containers)

    @property
    def starts(self) -> int:
        return sum(c.starts for c in self.containers)

    @property
    def init_errors(self) -> list[bytes]:
        return [e for c in self.containers for e in c.init_errors]

    def pids(self) -> list[int]:
        return [pid for c in self.containers if (pid := c.pid) is not None]

    def alive(self) -> bool:
        return all(c.alive() for c in self.containers)

    def start(self, env: Mapping[str, str] | None = None) -> None:
        for c in self.containers:
            c.start(env)

    def recycle(self) -> None:
        for c in self.containers:
            c.recycle()

    def stop(self) -> None:
        for c in self.containers:
            c.stop()
        self._server.shutdown()
        self._server.server_close()

    def wait_for_log(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(predicate(entry) for entry in list(self.logs)):
                return True
            time.sleep(0.05)
        return False

    # ---- invoke ----
    def invoke(self, payload: bytes | str | Mapping[str, Any]) -> InvokeResult:
        container = self._idle.get()
        try:
            return container.invoke(payload)
        finally:
            self._idle.put(container)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        pool = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                if self.path.startswith(INVOKE_PREFIX) and self.path.endswith("/invocations"):
                    self.reply(*invoke_reply(pool.invoke, pool.max_request_bytes, body))
                else:
                    self.reply(404, b'{"errorMessage":"not found"}')

        return Handler
