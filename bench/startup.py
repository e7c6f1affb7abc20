#!/usr/bin/env python3
"""Start-up time and peak memory of the release Lambda binaries.

For each function: start the release `bootstrap` (unzipped from cargo-lambda's zip) under a
minimal Lambda Runtime API served on 127.0.0.1, hand it one event, and measure
  - start-up: process spawn -> its first response POSTed to the Runtime API (init + first call),
  - peak RSS: the process's VmHWM after that response.
Prints one line per function (median of --runs runs). The producer's first call does
one PutRecords against a moto server started here; the relay's is an empty batch (its clients
are built, no AssumeRole yet); the target's is one record. The same relay written in Python
(bench/python_relay, boto3 under awslambdaric) gets the same variables and event.

Usage: python bench/startup.py [--runs 5]   (the Makefile target `bench` runs it)
"""

import argparse
import datetime
import http.server
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any, cast

from local_run import envelope
from local_run.moto_clients import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RuntimeApi(http.server.ThreadingHTTPServer):
    """Serves one event, then records when the response arrives."""

    daemon_threads = True

    def __init__(self, event: Mapping[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = json.dumps(event).encode()
        self.served = False
        self.responded = threading.Event()
        self.response_at: float | None = None
        self.response_body: tuple[str, bytes] | None = None  # (response or error, body)
        self.stop = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The measured process is killed while its next /invocation/next is pending.
        pass


class Handler(http.server.BaseHTTPRequestHandler):
    # awslambdaric's native client needs HTTP/1.1 (it crashes on HTTP/1.0 replies).
    protocol_version = "HTTP/1.1"

    @property
    def api(self) -> RuntimeApi:
        return cast(RuntimeApi, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if not self.path.endswith("/invocation/next"):
            self.send_error(404)
            return
        if self.api.served:
            # The runtime waits here for its next event; the measurement ends before one comes.
            self.api.stop.wait(30)
            self.close_connection = True
            return
        self.api.served = True
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:111111111111:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.api.event)))
        self.end_headers()
        self.wfile.write(self.api.event)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.api.response_at = time.perf_counter()
        self.api.response_body = (self.path.rsplit("/", 1)[-1], body)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.api.responded.set()


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def function_env(runtime_api: str, env: Mapping[str, str]) -> dict[str, str]:
    """What Lambda sets for a function process (loopback only, placeholder keys), and `env`."""
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "AKIDBENCH",
        "AWS_SECRET_ACCESS_KEY": "bench",
        # What Lambda sets for a function whose loggingConfig is JSON at WARN.
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "WARN",
        **env,
    }


def measure(
    command: Sequence[str], env: Mapping[str, str], event: Mapping[str, Any], cwd: str | None = None
) -> tuple[float, int]:
    api = RuntimeApi(event)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    full_env = function_env(f"127.0.0.1:{api.server_address[1]}", env)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=full_env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not api.responded.wait(60) or api.response_at is None or api.response_body is None:
            stderr = cast(io.BufferedReader, process.stderr).read1(4096)
            raise RuntimeError(f"{command}: no response within 60 s: {stderr!r}")
        elapsed_ms = (api.response_at - started) * 1000
        rss = peak_rss_kib(process.pid)
        kind, body = api.response_body
        if kind != "response":
            raise RuntimeError(f"{command} answered with an error: {body[:500]!r}")
        return elapsed_ms, rss
    finally:
        api.stop.set()
        process.kill()
        process.wait()
        api.shutdown()


def target_event() -> dict[str, Any]:
    """One envelope with one produced record, as the relay would send it."""
    created = datetime.datetime(2026, 11, 25, 5, 0, tzinfo=datetime.UTC)
    record_id, data = envelope.produced_record("k", message="hi", sequence=1, producer="p", created_at=created)
    record = envelope.relayed_record(
        sequence_number="1", partition_key=record_id, event_id="shardId-000000000000:1", data=data
    )
    return envelope.delivery_request([record], "bench")


def report(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    event: Mapping[str, Any],
    runs: int,
    size: int | None,
    cwd: str | None = None,
) -> tuple[float, int]:
    """Measures `runs` cold starts and prints one row; returns (median ms, peak RSS KiB)."""
    measured = [measure(command, env, event, cwd) for _ in range(runs)]
    times = [m[0] for m in measured]
    rss = max(m[1] for m in measured)
    shown = "-" if size is None else str(size)
    print(
        f"{name:<16} {shown:>10} {statistics.median(times):>21.1f} {min(times):>7.1f} {max(times):>7.1f} {rss / 1024:>13.1f}",
        flush=True,
    )
    return statistics.median(times), rss


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lambda-dir", default=os.path.join(ROOT, "target", "lambda"))
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench-")
    binaries = {}
    for name in ("producer", "relay", "target"):
        with zipfile.ZipFile(os.path.join(args.lambda_dir, name, "bootstrap.zip")) as z:
            z.extract("bootstrap", os.path.join(work, name))
        path = os.path.join(work, name, "bootstrap")
        os.chmod(path, 0o755)
        binaries[name] = path

    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # moto picks the account from each request's keys; MOTO_ACCOUNT_ID would override that.
        env={**{k: v for k, v in os.environ.items() if k != "MOTO_ACCOUNT_ID"}, "AWS_EC2_METADATA_DISABLED": "true"},
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        import boto3  # from the project's venv

        kinesis = boto3.client(
            "kinesis",
            endpoint_url=endpoint,
            region_name="eu-west-1",
            aws_access_key_id="AKIDBENCH",
            aws_secret_access_key="bench",
        )
        kinesis.create_stream(StreamName="bench", ShardCount=1)
        common = {"AWS_ENDPOINT_URL": endpoint}
        cases: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
            "producer": ({"STREAM_NAME": "bench"}, {"source": "aws.scheduler"}),
            "relay": (
                {
                    "TARGET_ROLE_ARN": "arn:aws:iam::222222222222:role/cross-account-relay-invoker",
                    "TARGET_EXTERNAL_ID": "bench",
                    "TARGET_FUNCTION_NAME": "cross-account-relay-target",
                    "DEAD_LETTER_BUCKET": "bench-dead-letters",
                },
                {"Records": []},
            ),
            "target": ({}, target_event()),
        }
        print(
            f"{'function':<16} {'zip bytes':>10} {'start-up ms (median)':>21} {'min':>7} {'max':>7} {'peak RSS MiB':>13}"
        )
        results = {}
        for name, (env, event) in cases.items():
            results[name] = report(
                name,
                [binaries[name]],
                {**common, **env},
                event,
                args.runs,
                os.path.getsize(os.path.join(args.lambda_dir, name, "bootstrap.zip")),
            )
        # The same relay in Python (boto3 under awslambdaric), same variables, same event.
        env, event = cases["relay"]
        python = report(
            "relay (Python)",
            [sys.executable, "-m", "awslambdaric", "relay.handler"],
            {**common, **env},
            event,
            args.runs,
            None,
            cwd=os.path.join(ROOT, "bench", "python_relay"),
        )
        rust = results["relay"]
        print(
            f"relay Rust vs Python: start-up {python[0] / rust[0]:.1f}x faster, peak RSS {python[1] / rust[1]:.1f}x smaller"
        )
    finally:
        moto.kill()
        moto.wait()


if __name__ == "__main__":
    main()
