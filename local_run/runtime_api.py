"""A Lambda runtime API emulator that hosts one function binary as one warm container.

Real Lambda runs the function's `bootstrap` as a long-lived process that pulls invocations from
the runtime API at `AWS_LAMBDA_RUNTIME_API`. This module serves that API on 127.0.0.1 and the
Invoke API in front of it (`POST /2015-03-31/functions/<name>/invocations`), with Lambda's
semantics where they matter to the data path:

- one invocation at a time per container (concurrent invokes queue, as with a concurrency of 1);
- a handler error is HTTP 200 + `X-Amz-Function-Error: Unhandled` with the error JSON as body
  (cargo-lambda's emulator answers 500, which the SDK retries);
- a request of Lambda's synchronous payload limit or more (6 MB, `local_run.limits`) is refused
  with 413 before the function sees it;
- a timeout or a crash fails the invocation (`Sandbox.Timedout` / `Runtime.ExitError`) and the
  next invocation gets a fresh process (a new cold start), as a real sandbox would. The timeout
  is the invocation's deadline (`Lambda-Runtime-Deadline-Ms`), to the millisecond, no grace;
- a process that dies during init (before it takes the invocation) fails the invocation at
  once, as Lambda does, not after the timeout: with the error it posted to `/init/error`, else
  `Runtime.ExitError` and its exit status;
- optionally a slow target (`processing_ms_per_record`): the container is kept busy that long per
  record of the envelope before the process takes it, as a target doing real work would be.

The process's output (stdout and stderr) goes through Lambda's log-level filtering
(`local_run.log_filter`, from the function's log format and level) first; the lines Lambda would keep
are parsed as JSON log lines and kept in memory (and copied to a log file), so the harness reads
`record processed` lines the way one would query CloudWatch Logs, and never a line Lambda drops.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

from local_run.faults import FaultInjector
from local_run.limits import limits
from local_run.log_filter import LogLevelFilter
from local_run.processes import spawn, terminate

RUNTIME_PREFIX = "/2018-06-01/runtime"
INVOKE_PREFIX = "/2015-03-31/functions/"

# Called with (function name, log line) for every line a function prints, when set.
EchoLine = Callable[[str, str], None]


@dataclass
class InvokeResult:
    body: bytes
    function_error: str | None  # "Unhandled" on a function error, else None
    duration_ms: float

    def json(self) -> Any:
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
    generation: int = 0  # generation of the process it was queued for


@dataclass(frozen=True)
class HostFaults:
    """Faults of `make soak` this container injects (`local_run.faults`), each counted by `injector`."""

    injector: FaultInjector
    kill: str | None = None  # class whose hit SIGKILLs the process as it answers (no answer given)
    slow: str | None = None  # class whose hit holds the process's answer for `slow_s` seconds
    slow_s: float = 0.0


class FunctionHost:
    """One function as one warm container: its runtime API server, its process, its logs.

    The server listens from construction (moto needs the address before the function can get
    its credentials); the process starts with `start(env)` and again after a crash or timeout.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        arn: str,
        env: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
        max_request_bytes: int | None = None,
        log_path: str | None = None,
        echo: EchoLine | None = None,
        logs: list[dict[str, Any]] | None = None,
        faults: HostFaults | None = None,
        processing_ms_per_record: float = 0.0,
    ) -> None:
        self.name = name
        self.arn = arn
        self.command = list(command)
        self.env = dict(env or {})
        self.timeout_s = timeout_s
        # Lambda refuses a synchronous request of this size or more.
        self.max_request_bytes = max_request_bytes or limits().lambda_sync_payload_limit
        self.log_path = log_path
        self.echo = echo
        self.logs: list[dict[str, Any]] = logs if logs is not None else []  # shared by a pool's containers
        self.faults = faults
        # A slow target: each invocation keeps the container busy this long per record it holds.
        self.processing_ms_per_record = processing_ms_per_record
        self.raw_lines: list[str] = []
        self.invocations = 0
        self.function_errors = 0
        self.starts = 0
        self.timeouts = 0  # invocations ended by the timeout (Sandbox.Timedout)
        self.filtered_lines = 0  # lines Lambda's log-level filtering dropped
        self.init_errors: list[bytes] = []
        self._init_error_of: dict[int, bytes] = {}  # generation -> what it posted to /init/error
        self._exit_of: dict[int, int] = {}  # generation -> its exit status, once it exited
        self._pending: queue.Queue[_Invocation] = queue.Queue()
        self._by_id: dict[str, _Invocation] = {}
        self._lock = threading.Lock()
        self._invoke_lock = threading.Lock()  # one invocation at a time per container
        self._proc: subprocess.Popen[bytes] | None = None
        self._generation = 0
        self._closing = False
        self._log_cond = threading.Condition()
        self._server = LoopbackServer(self._handler_class())
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, name=f"rt-{name}", daemon=True).start()

    # ---- process management ----
    def start(self, env: Mapping[str, str] | None = None) -> None:
        """Starts the process unless it runs; `env` replaces the environment it starts with."""
        with self._lock:
            if env is not None:
                self.env = dict(env)
            if self._proc is not None and self._proc.poll() is None:
                return
            self._generation += 1
            log_filter = LogLevelFilter.from_env(self.env)
            process_env = {**self.env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}"}
            log_file = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 - closed by the reader
            self._proc = spawn(self.command, env=process_env, stdout=subprocess.PIPE)
            self.starts += 1
            threading.Thread(
                target=self._read_output, args=(self._proc, log_file, self._generation, log_filter), daemon=True
            ).start()

    def recycle(self) -> None:
        """Replaces the process with a fresh one between two invocations: a new container, with
        a cold start and nothing cached (Lambda does this when it scales or refreshes sandboxes)."""
        with self._invoke_lock:
            with self._lock:
                proc = self._proc
            if proc is not None and proc.poll() is None:
                terminate(proc)
            self.start()

    def _read_output(
        self, proc: subprocess.Popen[bytes], log_file: IO[bytes] | None, generation: int, log_filter: LogLevelFilter
    ) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not log_filter.keeps(line):  # Lambda drops it before CloudWatch Logs
                self.filtered_lines += 1
                continue
            if log_file:
                log_file.write(raw)
                log_file.flush()
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
        # A crash fails whatever this process had taken (Lambda: Runtime.ExitError), and a death
        # during init the invocation waiting for it, at once.
        with self._lock:
            self._exit_of[generation] = proc.returncode
            for inv in list(self._by_id.values()):
                if inv.done.is_set():
                    continue
                if inv.taken_by == generation:
                    inv.body = json.dumps(
                        {
                            "errorType": "Runtime.ExitError",
                            "errorMessage": f"process exited with status {proc.returncode}",
                        }
                    ).encode()
                elif inv.taken_by is None and inv.generation == generation:
                    inv.body = self._init_failure(inv.request_id, generation)
                else:
                    continue
                inv.function_error = "Unhandled"
                inv.done.set()

    def _init_failure(self, request_id: str, generation: int) -> bytes:
        """What Lambda answers an invocation whose environment failed to initialise: the error the
        runtime posted to /init/error, else Runtime.ExitError with how the process ended. Called
        with `_lock` held."""
        posted = self._init_error_of.get(generation)
        if posted is not None:
            return posted
        status = self._exit_of.get(generation)
        if status is None:
            ended = "the process ended"
        elif status < 0:
            ended = f"signal: {signal.Signals(-status).name}"
        else:
            ended = f"exit status {status}"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {ended}"
        return json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message}).encode()

    def _init_error_posted(self, body: bytes) -> None:
        """The runtime reported that it cannot initialise: Lambda fails the invocation waiting for
        it with that error at once, and the environment is replaced (the process is stopped; the
        next invocation starts a fresh one)."""
        document = body or b'{"errorType":"Runtime.Unknown","errorMessage":"init error without body"}'
        self.init_errors.append(document)
        with self._lock:
            generation, proc = self._generation, self._proc
            self._init_error_of[generation] = document
            for inv in self._by_id.values():
                if not inv.done.is_set() and inv.taken_by is None and inv.generation == generation:
                    inv.body, inv.function_error = document, "Unhandled"
                    inv.done.set()
        if proc is not None:
            threading.Thread(target=terminate, args=(proc,), daemon=True).start()

    def stop(self) -> None:
        self._closing = True
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            terminate(proc)
        self._server.shutdown()
        self._server.server_close()

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process's id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _answer_with_faults(self) -> bool:
        """Applies the soak's faults to an answer about to be given: False when the process was
        killed instead (its exit then fails the invocation with Runtime.ExitError)."""
        faults = self.faults
        if faults is None:
            return True
        if faults.kill and faults.injector.fire(faults.kill):
            with self._lock:
                proc = self._proc
            if proc is not None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return False
        if faults.slow and faults.injector.fire(faults.slow):
            time.sleep(faults.slow_s)
        return True

    # ---- invoke ----
    def invoke(self, payload: bytes | str | Mapping[str, Any]) -> InvokeResult:
        if isinstance(payload, Mapping):
            payload = json.dumps(payload).encode()
        elif isinstance(payload, str):
            payload = payload.encode()
        with self._invoke_lock:
            if not self.alive():
                self.start()
            started = time.monotonic()
            if self.processing_ms_per_record:
                # Spent before the process takes the invocation, so not counted against its timeout.
                time.sleep(self.processing_ms_per_record * records_in(payload) / 1000)
            deadline = time.time() + self.timeout_s
            inv = _Invocation(request_id=str(uuid.uuid4()), payload=payload, deadline_ms=int(deadline * 1000))
            with self._lock:
                inv.generation = self._generation
                self._by_id[inv.request_id] = inv
                if inv.generation in self._exit_of or inv.generation in self._init_error_of:
                    # It died during init before this invocation was queued.
                    inv.body, inv.function_error = self._init_failure(inv.request_id, inv.generation), "Unhandled"
                    inv.done.set()
            self._pending.put(inv)
            timed_out, proc = False, None
            if not inv.done.wait(max(0.0, deadline - time.time())):
                # Lambda: at the deadline the sandbox is stopped and the invocation fails. Decided
                # under the lock an answer is given under, so an answer just in time still counts.
                with self._lock:
                    timed_out = not inv.done.is_set()
                    if timed_out:
                        self.timeouts += 1
                        inv.body = json.dumps(
                            {
                                "errorType": "Sandbox.Timedout",
                                "errorMessage": f"Task timed out after {self.timeout_s:.2f} seconds",
                            }
                        ).encode()
                        inv.function_error = "Unhandled"
                        inv.done.set()  # before stopping the process, so its exit does not re-answer
                    proc = self._proc
            if timed_out:
                if proc is not None:
                    terminate(proc)
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

    def wait_for_log(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
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
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.path != f"{RUNTIME_PREFIX}/invocation/next":
                    return self.reply(404, b'{"errorMessage":"not found"}')
                # The process asking is the current one; once it is replaced (a recycle, a
                # restart after a timeout) this long poll must not take an invocation meant
                # for its successor and write it to a dead connection.
                generation = host._generation
                while True:
                    if host._generation != generation:
                        return None
                    try:
                        inv = host._pending.get(timeout=0.5)
                    except queue.Empty:
                        if host._closing:
                            return self.reply(503)
                        continue
                    if host._generation != generation:
                        host._pending.put(inv)  # one invocation at a time: nothing overtakes it
                        return None
                    if not inv.done.is_set():  # else it timed out before anyone took it
                        break
                inv.taken_by = generation
                trace = (
                    f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
                )
                return self.reply(
                    200,
                    inv.payload,
                    {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": host.arn,
                        "Lambda-Runtime-Trace-Id": trace,
                    },
                )

            def do_POST(self) -> None:
                body = self.read_body()
                path = self.path
                if path.startswith(f"{RUNTIME_PREFIX}/invocation/"):
                    rest = path[len(f"{RUNTIME_PREFIX}/invocation/") :]
                    request_id, _, kind = rest.partition("/")
                    with host._lock:
                        inv = host._by_id.get(request_id)
                    if inv is None or inv.done.is_set():
                        return self.reply(400, b'{"errorMessage":"unknown or finished invocation"}')
                    if kind not in ("response", "error"):
                        return self.reply(404)
                    if not host._answer_with_faults():
                        return None  # killed: no answer, the connection closes
                    with host._lock:
                        if inv.done.is_set():  # the deadline passed meanwhile: too late
                            return self.reply(400, b'{"errorMessage":"unknown or finished invocation"}')
                        if kind == "response":
                            inv.body = body
                        else:
                            inv.body = body or b'{"errorType":"Unknown","errorMessage":"error without body"}'
                            inv.function_error = "Unhandled"
                        inv.done.set()
                    return self.reply(202, b'{"status":"OK"}')
                if path == f"{RUNTIME_PREFIX}/init/error":
                    self.reply(202, b'{"status":"OK"}')
                    return host._init_error_posted(body)
                if path.startswith(INVOKE_PREFIX) and path.endswith("/invocations"):
                    return self.reply(*invoke_reply(host.invoke, host.max_request_bytes, body))
                return self.reply(404, b'{"errorMessage":"not found"}')

        return Handler


def records_in(payload: bytes) -> int:
    """The records of a delivery envelope (`records`), 0 for any other payload."""
    try:
        document = json.loads(payload)
    except ValueError:
        return 0
    records = document.get("records") if isinstance(document, dict) else None
    return len(records) if isinstance(records, list) else 0


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free port of 127.0.0.1. Its listen backlog is 128, not
    socketserver's 5: more concurrent Invokes than that (the soak's relay containers, each with
    several Invokes at once, each on a new connection) would overflow it, and a handshake the
    kernel drops is retried only after TCP's minimum retransmission timeout, 200 ms."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)


class QuietHandler(BaseHTTPRequestHandler):
    """An HTTP/1.1 handler that logs nothing (the emulators' callers log what matters)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        """Writes one HTTP answer; a caller that went away (a stopped process) is no error."""
        try:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass


def invoke_reply(
    invoke: Callable[[bytes], InvokeResult], max_request_bytes: int, body: bytes
) -> tuple[int, bytes, dict[str, str]]:
    """The Invoke API's answer (status, body, headers) to a request of `body`, with Lambda's
    semantics: 413 at the synchronous payload limit, 200 + X-Amz-Function-Error on a function error."""
    if len(body) >= max_request_bytes:  # Lambda: "must be smaller than"
        message = f"Request must be smaller than {max_request_bytes} bytes for the InvokeFunction operation"
        return (
            413,
            json.dumps({"Type": "User", "message": message}).encode(),
            {"X-Amzn-ErrorType": "RequestEntityTooLargeException"},
        )
    result = invoke(body)
    headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
    if result.function_error:
        headers["X-Amz-Function-Error"] = result.function_error
    return 200, result.body, headers
