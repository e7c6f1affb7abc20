"""A Lambda runtime API emulator that hosts one function binary as one warm container.

Real Lambda runs the function's `bootstrap` as a long-lived process that pulls invocations from
the runtime API at `AWS_LAMBDA_RUNTIME_API`. This module serves that API on 127.0.0.1 and the
Invoke API in front of it (`POST /2015-03-31/functions/<name>/invocations`), with Lambda's
semantics where they matter to the data path:

- one invocation at a time per container (concurrent invokes queue, as with a concurrency of 1);
- a handler error is HTTP 200 + `X-Amz-Function-Error: Unhandled` with the error JSON as body
  (cargo-lambda's emulator answers 500, which the SDK retries);
- a request over the payload limit (6 MB) is refused with 413 before the function sees it;
- a timeout or a crash fails the invocation (`Sandbox.Timedout` / `Runtime.ExitError`) and the
  next invocation gets a fresh process (a new cold start), as a real sandbox would.

The process's stdout is parsed as JSON log lines and kept in memory (and copied to a log file),
so the harness reads `record processed` lines the way one would query CloudWatch Logs.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SYNC_REQUEST_LIMIT = 6 * 1024 * 1024
RUNTIME_PREFIX = "/2018-06-01/runtime"


@dataclass
class InvokeResult:
    body: bytes
    function_error: str | None  # "Unhandled" on a function error, else None
    duration_ms: float

    def json(self):
        return json.loads(self.body)


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    body: bytes = b""
    function_error: str | None = None
    taken_by: int | None = None  # generation of the process that took it


class _Spawner:
    """Starts child processes from one long-lived thread.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process, so a
    child started from a short-lived request thread (a restart after a crash) would be killed
    at once. Every Popen therefore runs on this thread, which lives as long as the harness.
    """

    def __init__(self):
        self._requests: "queue.Queue" = queue.Queue()
        threading.Thread(target=self._loop, name="spawner", daemon=True).start()

    def _loop(self):
        while True:
            args, kwargs, reply = self._requests.get()
            try:
                reply.put((subprocess.Popen(*args, **kwargs), None))
            except Exception as err:  # handed back to the caller
                reply.put((None, err))

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        if threading.current_thread() is threading.main_thread():
            return subprocess.Popen(*args, **kwargs)
        reply: "queue.Queue" = queue.Queue()
        self._requests.put((args, kwargs, reply))
        proc, err = reply.get()
        if err is not None:
            raise err
        return proc


_spawner: "_Spawner | None" = None
_spawner_lock = threading.Lock()


def popen(*args, **kwargs) -> subprocess.Popen:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.popen(*args, **kwargs)


def _die_with_parent() -> None:
    """Children get SIGTERM if the harness dies without cleaning up (Linux prctl)."""
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class FunctionHost:
    """One function: its runtime API server, its process, its logs."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], *, arn: str,
                 timeout_s: float = 30.0, log_path: str | None = None, echo=None):
        self.name = name
        self.arn = arn
        self.command = command
        self.env = env
        self.timeout_s = timeout_s
        self.max_request_bytes = SYNC_REQUEST_LIMIT
        self.log_path = log_path
        self.echo = echo  # optional callable(line) for live output
        self.logs: list[dict] = []
        self.raw_lines: list[str] = []
        self.invocations = 0
        self.function_errors = 0
        self.starts = 0
        self.init_errors: list[bytes] = []
        self._pending: "queue.Queue[_Invocation]" = queue.Queue()
        self._by_id: dict[str, _Invocation] = {}
        self._lock = threading.Lock()
        self._invoke_lock = threading.Lock()  # one invocation at a time per container
        self._proc: subprocess.Popen | None = None
        self._generation = 0
        self._closing = False
        self._log_cond = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, name=f"rt-{name}", daemon=True).start()

    # ---- process management ----
    def start(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            self._generation += 1
            env = dict(self.env)
            env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{self.port}"
            log_file = open(self.log_path, "ab") if self.log_path else None
            self._proc = popen(
                self.command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            )
            self.starts += 1
            threading.Thread(target=self._read_output, args=(self._proc, log_file, self._generation),
                             daemon=True).start()

    def _read_output(self, proc: subprocess.Popen, log_file, generation: int) -> None:
        for raw in proc.stdout:
            if log_file:
                log_file.write(raw)
                log_file.flush()
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._log_cond:
                self.raw_lines.append(line)
                try:
                    parsed = json.loads(line)
                    if isinstance(parsed, dict):
                        self.logs.append(parsed)
                except ValueError:
                    pass
                self._log_cond.notify_all()
            if self.echo:
                self.echo(self.name, line)
        proc.wait()
        if log_file:
            log_file.close()
        # A crash fails whatever this process had taken (Lambda: Runtime.ExitError).
        with self._lock:
            for inv in list(self._by_id.values()):
                if inv.taken_by == generation and not inv.done.is_set():
                    inv.body = json.dumps({"errorType": "Runtime.ExitError",
                                           "errorMessage": f"process exited with status {proc.returncode}"}).encode()
                    inv.function_error = "Unhandled"
                    inv.done.set()

    def stop(self) -> None:
        self._closing = True
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            _terminate(proc)
        self._server.shutdown()
        self._server.server_close()

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ---- invoke ----
    def invoke(self, payload: bytes | str | dict) -> InvokeResult:
        if isinstance(payload, dict):
            payload = json.dumps(payload).encode()
        elif isinstance(payload, str):
            payload = payload.encode()
        with self._invoke_lock:
            if not self.alive():
                self.start()
            started = time.monotonic()
            inv = _Invocation(request_id=str(uuid.uuid4()), payload=payload,
                              deadline_ms=int((time.time() + self.timeout_s) * 1000))
            with self._lock:
                self._by_id[inv.request_id] = inv
            self._pending.put(inv)
            if not inv.done.wait(self.timeout_s + 1.0):
                # Lambda: the sandbox is stopped and the invocation fails.
                inv.body = json.dumps({"errorType": "Sandbox.Timedout",
                                       "errorMessage": f"Task timed out after {self.timeout_s:.2f} seconds"}).encode()
                inv.function_error = "Unhandled"
                inv.done.set()  # before stopping the process, so its exit does not re-answer
                with self._lock:
                    proc = self._proc
                if proc is not None:
                    _terminate(proc)
                # Drop an invocation nobody took, so a fresh process does not run it late.
                try:
                    while True:
                        self._pending.get_nowait()
                except queue.Empty:
                    pass
            with self._lock:
                self._by_id.pop(inv.request_id, None)
            self.invocations += 1
            if inv.function_error:
                self.function_errors += 1
            return InvokeResult(inv.body, inv.function_error, (time.monotonic() - started) * 1000)

    def wait_for_log(self, predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._log_cond:
            while True:
                if any(predicate(entry) for entry in self.logs):
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._log_cond.wait(left)

    # ---- HTTP ----
    def _handler_class(self):
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None):
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the caller went away (a stopped function process)
                    pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self):
                if self.path == f"{RUNTIME_PREFIX}/invocation/next":
                    while True:
                        try:
                            inv = host._pending.get(timeout=0.5)
                            break
                        except queue.Empty:
                            if host._closing:
                                return self._reply(503)
                    if inv.done.is_set():  # timed out before anyone took it
                        return self.do_GET()
                    inv.taken_by = host._generation
                    return self._reply(200, inv.payload, {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": host.arn,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0",
                    })
                return self._reply(404, b'{"errorMessage":"not found"}')

            def do_POST(self):
                body = self._body()
                path = self.path
                if path.startswith(f"{RUNTIME_PREFIX}/invocation/"):
                    rest = path[len(f"{RUNTIME_PREFIX}/invocation/"):]
                    request_id, _, kind = rest.partition("/")
                    with host._lock:
                        inv = host._by_id.get(request_id)
                    if inv is None or inv.done.is_set():
                        return self._reply(400, b'{"errorMessage":"unknown or finished invocation"}')
                    if kind == "response":
                        inv.body = body
                    elif kind == "error":
                        inv.body = body or b'{"errorType":"Unknown","errorMessage":"error without body"}'
                        inv.function_error = "Unhandled"
                    else:
                        return self._reply(404)
                    inv.done.set()
                    return self._reply(202, b'{"status":"OK"}')
                if path == f"{RUNTIME_PREFIX}/init/error":
                    host.init_errors.append(body)
                    return self._reply(202, b'{"status":"OK"}')
                if path.startswith("/2015-03-31/functions/") and path.endswith("/invocations"):
                    if len(body) >= host.max_request_bytes:  # Lambda: "must be smaller than"
                        return self._reply(413, json.dumps({
                            "Type": "User", "message": f"Request must be smaller than {host.max_request_bytes} bytes for the InvokeFunction operation",
                        }).encode(), {"X-Amzn-ErrorType": "RequestEntityTooLargeException"})
                    result = host.invoke(body)
                    headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
                    if result.function_error:
                        headers["X-Amz-Function-Error"] = result.function_error
                    return self._reply(200, result.body, headers)
                return self._reply(404, b'{"errorMessage":"not found"}')

        return Handler


def _terminate(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """Stop a child started in its own session: SIGTERM to its group, then SIGKILL."""
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
