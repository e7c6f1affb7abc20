#!/usr/bin/env python3
"""Warm throughput of the relay, Rust and Python side by side, and key-ordered delivery.

One warm relay process per row, fed batches through a local Lambda Runtime API, calling a
loopback stand-in for STS (AssumeRole) and Lambda (Invoke) served here: no moto, so what is
measured is the relay's own cost. Every server socket sets TCP_NODELAY (Nagle plus delayed ACKs
would add ~40 ms to every response). The stand-in answers `ok` for every record, `--delay-ms` per
record after it received the request when it plays a slow target.

Part 1, per batch size (10, 100, 1,000 records of 1 KiB; 5 records near the 6 MB limit), for
the release relay (target/lambda/relay/bootstrap.zip) and bench/python_relay (boto3 under
awslambdaric): a fresh process, 3 warm-up invocations, then measured ones (--megabytes of record
data, 10 to 2,000 invocations):
  - wall per invocation: event handed out by the Runtime API -> response received;
  - CPU per MB: the relay process's user+system CPU over the measured invocations (from
    /proc/<pid>/stat) per MB (10^6 bytes) of record data (the bytes before base64);
  - peak RSS (VmHWM) after the run, and the AssumeRole calls the stand-in served.
Then the 100- and 1,000-record batches again as KPL aggregates of 50 user records each (built by
the independent aws-kinesis-agg), for the Rust relay only (the Python relay does not de-aggregate):
CPU per MB of user data (the aggregates' framing not counted), next to the plain batch's.
Part 2: the Rust relay against a target that takes 2 ms per record, batches of 1,000 records of
10 distinct keys: records/s with one Invoke per batch (the default) and with key-ordered
delivery (RELAY_MAX_RECORDS_PER_INVOCATION, RELAY_MAX_CONCURRENT_INVOCATIONS). The stand-in
records the order in which it processed each key's records, and counts envelopes that arrived
while another envelope of one of their keys was still in flight: both must show no violation.

What it does not measure: Lambda's own overhead, TLS, SigV4 against real endpoints' latency, or
anything of the stand-in's (it runs in this process, not in the measured one).

Usage: python -m bench.throughput [--megabytes 20] [--part all|sizes|slow]   (the Makefile target `bench` runs it)
"""

from __future__ import annotations

import argparse
import base64
import datetime
import http.server
import itertools
import json
import os
import queue
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from aws_kinesis_agg.aggregator import AggRecord

from bench.startup import function_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIB = 1024
TARGET_FUNCTION = "cross-account-relay-target"


class NoDelayHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, TCP_NODELAY on the socket, no request log."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        cast(socket.socket, self.request).setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def reply(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's listen backlog is 5: ten connections opened at once overflow it, and the
    # handshake the kernel drops is retried only after TCP's minimum retransmission timeout, 200 ms.
    request_queue_size = 128

    def __init__(self, handler: type[NoDelayHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a measured process is killed while its next request is pending


# ---- the stand-in for STS and Lambda ----

# What each record of an envelope starts with, in both relays' envelopes.
# A user record of a KPL aggregate carries its sub-sequence number between the two (the Rust
# relay's envelope only: the Python relay does not de-aggregate).
RECORD = re.compile(
    rb'"sequence_number":\s*"([^"]+)",(?:\s*"sub_sequence_number":\s*(\d+),)?\s*"partition_key":\s*"([^"]*)"'
)

ASSUME_ROLE = """<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleResult><Credentials><AccessKeyId>ASIABENCH</AccessKeyId><SecretAccessKey>bench</SecretAccessKey>
<SessionToken>bench-token</SessionToken><Expiration>{expiration}</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::222222222222:assumed-role/cross-account-relay-invoker/bench</Arn>
<AssumedRoleId>AROABENCH:bench</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>
<ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></AssumeRoleResponse>"""


@dataclass
class StandInState:
    delay_ms_per_record: float = 0.0
    assume_role_calls: int = 0
    invokes: int = 0
    # Per key, the sequence numbers in the order the stand-in finished processing them.
    processed: dict[str, list[int]] = field(default_factory=dict)
    keys_in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class StandInHandler(NoDelayHandler):
    state: StandInState  # set on the subclass made per server

    def do_POST(self) -> None:
        body = self.body()
        received = time.perf_counter()
        if self.path.startswith("/2015-03-31/functions/") and self.path.endswith("/invocations"):
            self.invoke(body, received)
        elif b"Action=AssumeRole" in body:
            with self.state.lock:
                self.state.assume_role_calls += 1
            expiration = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
            xml = ASSUME_ROLE.format(expiration=expiration.strftime("%Y-%m-%dT%H:%M:%SZ"))
            self.reply(200, xml.encode(), "text/xml")
        else:
            self.reply(400, b'{"message":"the stand-in serves AssumeRole and Invoke only"}', "application/json")

    def invoke(self, body: bytes, received: float) -> None:
        """Answers `ok` for each record `delay_ms_per_record` after the request was received: the
        stand-in's own reading of the request counts as processing time, as a target's would.
        Read here it would add to it, and this process reads its concurrent requests one at a
        time (one interpreter lock), where Lambda would run each in its own container."""
        records = [(seq.decode(), sub.decode(), key.decode()) for seq, sub, key in RECORD.findall(body)]
        keys = {key for _, _, key in records}
        state = self.state
        with state.lock:
            state.invokes += 1
            if any(state.keys_in_flight.get(k, 0) for k in keys):
                state.overlaps += 1
            for k in keys:
                state.keys_in_flight[k] = state.keys_in_flight.get(k, 0) + 1
        if state.delay_ms_per_record:
            done = received + state.delay_ms_per_record * len(records) / 1000
            time.sleep(max(0.0, done - time.perf_counter()))
        with state.lock:
            for seq, _, key in records:
                state.processed.setdefault(key, []).append(int(seq))
            for k in keys:
                state.keys_in_flight[k] -= 1
        results = ",".join(ok_result(seq, sub) for seq, sub, _ in records)
        answer = f'{{"version":1,"results":[{results}]}}'.encode()
        self.reply(200, answer, "application/json", {"X-Amz-Executed-Version": "$LATEST"})


def ok_result(sequence_number: str, sub_sequence_number: str) -> str:
    """The envelope's `ok` answer to one record (`sub_sequence_number`: "" for a plain record)."""
    sub = f'"sub_sequence_number":{sub_sequence_number},' if sub_sequence_number else ""
    return f'{{"sequence_number":"{sequence_number}",{sub}"status":"ok"}}'


def stand_in(delay_ms_per_record: float) -> tuple[Server, StandInState]:
    state = StandInState(delay_ms_per_record=delay_ms_per_record)
    handler = type("Handler", (StandInHandler,), {"state": state})
    return Server(handler), state


# ---- a Runtime API that keeps one process warm ----


class RuntimeHandler(NoDelayHandler):
    events: queue.Queue[bytes]
    answers: queue.Queue[tuple[float, float, str, bytes]]
    handed: list[float]

    def do_GET(self) -> None:
        if not self.path.endswith("/invocation/next"):
            self.reply(404, b"{}", "application/json")
            return
        event = self.events.get()
        self.handed.append(time.perf_counter())
        headers = {
            "Lambda-Runtime-Aws-Request-Id": f"bench-{len(self.handed)}",
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 300_000),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-1:111111111111:function:bench",
            "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
        }
        self.reply(200, event, "application/json", headers)

    def do_POST(self) -> None:
        body = self.body()
        received = time.perf_counter()
        self.reply(202, b"", "application/json")
        kind = self.path.rsplit("/", 1)[-1]
        self.answers.put((self.handed[-1] if self.handed else received, received, kind, body))


class WarmFunction:
    """One process under a local Runtime API: hands it events one at a time."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], cwd: str | None = None) -> None:
        handler = type("Runtime", (RuntimeHandler,), {"events": queue.Queue(), "answers": queue.Queue(), "handed": []})
        self.handler = cast(type[RuntimeHandler], handler)
        self.api = Server(handler)
        full_env = function_env(self.api.url.removeprefix("http://"), env)
        self.process = subprocess.Popen(
            command, env=full_env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def invoke(self, event: bytes) -> tuple[float, bytes]:
        """Hands out one event; returns (seconds from hand-out to response, the response)."""
        self.handler.events.put(event)
        try:
            handed, received, kind, body = self.handler.answers.get(timeout=300)
        except queue.Empty:
            raise RuntimeError(f"no response within 300 s: {self.stderr()!r}") from None
        if kind != "response":
            raise RuntimeError(f"the function answered with an error: {body[:500]!r}")
        return received - handed, body

    def cpu_seconds(self) -> float:
        """CPU time of the process's threads so far, to the nanosecond (/proc/<pid>/task/*/schedstat;
        /proc/<pid>/stat counts in 10 ms ticks, too coarse for small batches). A thread that
        exits takes its time with it: both relays keep their threads for the whole run."""
        total = 0
        tasks = f"/proc/{self.process.pid}/task"
        for task in os.listdir(tasks):
            try:
                with open(f"{tasks}/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            except FileNotFoundError:
                pass  # exited between listdir and open
        return total / 1e9

    def peak_rss_mib(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return -1.0

    def stderr(self) -> bytes:
        if self.process.poll() is None:
            return b"(still running)"
        return cast(Any, self.process.stderr).read(4096)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.api.shutdown()


# ---- batches ----


def kinesis_event(records: Sequence[tuple[str, bytes]], first_sequence: int = 1) -> bytes:
    """A Kinesis event as the event source mapping delivers it: (partition key, data) records."""
    out = []
    for i, (key, data) in enumerate(records):
        seq = str(first_sequence + i)
        out.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": key,
                    "sequenceNumber": seq,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": 1764045097.5,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{seq}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::111111111111:role/relay",
                "awsRegion": "eu-west-1",
                "eventSourceARN": "arn:aws:kinesis:eu-west-1:111111111111:stream/bench",
            }
        )
    return json.dumps({"Records": out}).encode()


def payload(size: int, n: int) -> bytes:
    """`size` bytes of JSON-looking text, different per record (what a producer sends)."""
    head = f'{{"id":"{n:08d}","body":"'.encode()
    return head + b"x" * (size - len(head) - 2) + b'"}'


@dataclass(frozen=True)
class Size:
    name: str
    records: Sequence[tuple[str, bytes]]  # the Kinesis records: (partition key, data)
    user_bytes: int = 0  # aggregated: the data of the user records the aggregates hold
    plain: str = ""  # aggregated: the size whose records these aggregates hold, one by one

    @property
    def data_bytes(self) -> int:
        """The user data per batch: what CPU per MB divides by (an aggregate's framing is not)."""
        return self.user_bytes or sum(len(d) for _, d in self.records)


def aggregated(plain: Size, per_aggregate: int) -> Size:
    """`plain`'s records packed `per_aggregate` at a time into KPL aggregates by the independent
    `aws-kinesis-agg` (each Kinesis record keyed by its first user record, as the KPL does)."""
    records = []
    for start in range(0, len(plain.records), per_aggregate):
        aggregate = AggRecord()
        for key, data in plain.records[start : start + per_aggregate]:
            if not aggregate.add_user_record(key, data):
                raise ValueError(f"{per_aggregate} records of {plain.name} do not fit one aggregate")
        key, _, body = aggregate.get_contents()
        records.append((key, bytes(body)))
    name = f"{plain.name.split(' ')[0]} in {len(records)} KPL"
    return Size(name, records, user_bytes=plain.data_bytes, plain=plain.name)


def sizes() -> list[Size]:
    def ones(n: int) -> Size:
        return Size(f"{n} x 1 KiB", [(f"k{i % 10}", payload(KIB, i)) for i in range(n)])

    # Four 1,048,000-byte records and one of 450,000: a 6.19 MB event and one 6.19 MB envelope,
    # under Lambda's 6,291,456-byte limit on both.
    near = [(f"k{i}", payload(1_048_000, i)) for i in range(4)] + [("k4", payload(450_000, 4))]
    plain = [ones(10), ones(100), ones(1000)]
    # The same user records as the 100 and 1,000 rows, 50 to an aggregate (about 52 KB, near the
    # KPL's default AggregationMaxSize of 51,200 bytes).
    return [*plain, Size("5 near 6 MB", near), *(aggregated(size, 50) for size in plain[1:])]


# ---- the measurements ----


@dataclass
class Row:
    wall_ms: float
    cpu_ms_per_mb: float
    peak_rss_mib: float
    assume_role_calls: int


def relay_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "TARGET_ROLE_ARN": "arn:aws:iam::222222222222:role/cross-account-relay-invoker",
        "TARGET_EXTERNAL_ID": "bench",
        "TARGET_FUNCTION_NAME": TARGET_FUNCTION,
        "DEAD_LETTER_BUCKET": "bench-dead-letters",
    }


def run_size(command: Sequence[str], cwd: str | None, size: Size, invocations: int, warmup: int) -> Row:
    server, state = stand_in(0)
    function = WarmFunction(command, relay_env(server.url), cwd)
    event = kinesis_event(size.records)
    try:
        for _ in range(warmup):
            check_all_delivered(function.invoke(event)[1])
        cpu_before = function.cpu_seconds()
        walls = []
        for _ in range(invocations):
            wall, body = function.invoke(event)
            check_all_delivered(body)
            walls.append(wall)
        cpu = function.cpu_seconds() - cpu_before
        mb = size.data_bytes * invocations / 1e6
        return Row(statistics.median(walls) * 1000, cpu * 1000 / mb, function.peak_rss_mib(), state.assume_role_calls)
    finally:
        function.stop()
        server.shutdown()


def check_all_delivered(body: bytes) -> None:
    failures = json.loads(body).get("batchItemFailures")
    if failures:
        raise RuntimeError(f"{len(failures)} records reported as failed: {failures[:3]}")


def invocations_for(size: Size, megabytes: float) -> int:
    """Enough invocations for `megabytes` of record data (at least 10, at most 2,000)."""
    return min(2000, max(10, round(megabytes * 1e6 / size.data_bytes)))


def part_one(rust: Sequence[str], python: Sequence[str], megabytes: float) -> None:
    print(
        f"{'batch':<14} {'relay':<7} {'wall ms/inv':>11} {'CPU ms/MB':>10} {'peak RSS MiB':>12} {'AssumeRole':>10}"
        f" {'n':>4}   Python/Rust: {'wall':>5} {'CPU/MB':>6} {'RSS':>5}",
        flush=True,
    )
    python_dir = os.path.join(ROOT, "bench", "python_relay")
    rust_rows: dict[str, Row] = {}
    for size in sizes():
        n = invocations_for(size, megabytes)
        rows = {"Rust": run_size(rust, None, size, n, warmup=3)}
        rust_rows[size.name] = rows["Rust"]
        if not size.plain:  # the Python relay does not de-aggregate: it has no aggregated rows
            rows["Python"] = run_size(python, python_dir, size, n, warmup=3)
        for name, row in rows.items():
            ratios = ""
            if name == "Python":
                r = rows["Rust"]
                ratios = f"   {'':<13}{row.wall_ms / r.wall_ms:>5.1f}x {row.cpu_ms_per_mb / r.cpu_ms_per_mb:>5.1f}x {row.peak_rss_mib / r.peak_rss_mib:>4.1f}x"
            elif size.plain:
                p = rust_rows[size.plain]
                ratios = f"   KPL/plain CPU/MB: {row.cpu_ms_per_mb / p.cpu_ms_per_mb:.2f}x (vs {size.plain})"
            print(
                f"{size.name:<14} {name:<7} {row.wall_ms:>11.2f} {row.cpu_ms_per_mb:>10.1f} {row.peak_rss_mib:>12.1f}"
                f" {row.assume_role_calls:>10} {n:>4}{ratios}",
                flush=True,
            )


def part_two(
    rust: Sequence[str], delay_ms: float, keys: int, batch: int, batches: int, per_invoke: int, lanes: int
) -> float:
    print(
        f"\nslow target: {delay_ms:g} ms per record; batches of {batch} records of {keys} distinct keys;"
        f" {batches} batches each (records/s = records delivered / wall of all batches)",
        flush=True,
    )
    print(f"{'delivery':<46} {'records/s':>10} {'invokes':>8} {'order violations':>17}", flush=True)
    modes = {
        "one Invoke per batch (default)": {},
        f"key-ordered: {per_invoke} records/Invoke, {lanes} at once": {
            "RELAY_MAX_RECORDS_PER_INVOCATION": str(per_invoke),
            "RELAY_MAX_CONCURRENT_INVOCATIONS": str(lanes),
        },
    }
    # Built before the clock starts: making a 1,000-record event takes this process 25-45 ms, which
    # is not the relay's time (it cost the key-ordered run about a tenth of its records/s).
    events = [
        kinesis_event([(f"key-{i % keys}", payload(KIB, i)) for i in range(batch)], first_sequence=1 + b * batch)
        for b in range(batches)
    ]
    rates = []
    for label, extra in modes.items():
        server, state = stand_in(delay_ms)
        function = WarmFunction(rust, {**relay_env(server.url), **extra})
        try:
            function.invoke(kinesis_event([("warm-up", b"{}")], first_sequence=0))
            state.processed.clear()
            invokes_before = state.invokes
            started = time.perf_counter()
            for event in events:
                check_all_delivered(function.invoke(event)[1])
            elapsed = time.perf_counter() - started
        finally:
            function.stop()
            server.shutdown()
        violations = state.overlaps + sum(
            sum(1 for a, b in itertools.pairwise(seqs) if a >= b) for seqs in state.processed.values()
        )
        delivered = sum(len(seqs) for seqs in state.processed.values())
        if delivered != batch * batches:
            raise RuntimeError(f"{label}: the stand-in processed {delivered} records, expected {batch * batches}")
        rate = delivered / elapsed
        rates.append(rate)
        print(f"{label:<46} {rate:>10.0f} {state.invokes - invokes_before:>8} {violations:>17}", flush=True)
        if violations:
            raise RuntimeError(f"{label}: {violations} order violations per key")
    print(f"key-ordered / one Invoke per batch: {rates[1] / rates[0]:.1f}x records/s", flush=True)
    return rates[1] / rates[0]


def unzip_relay(lambda_dir: str) -> str:
    work = tempfile.mkdtemp(prefix="bench-throughput-")
    with zipfile.ZipFile(os.path.join(lambda_dir, "relay", "bootstrap.zip")) as z:
        z.extract("bootstrap", work)
    path = os.path.join(work, "bootstrap")
    os.chmod(path, 0o755)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--megabytes", type=float, default=20, help="record data per measured row (10 to 2,000 invocations)"
    )
    parser.add_argument("--lambda-dir", default=os.path.join(ROOT, "target", "lambda"))
    parser.add_argument("--relay", help="a relay binary to run instead of the one in --lambda-dir's relay zip")
    parser.add_argument("--delay-ms", type=float, default=2.0, help="slow target: processing time per record")
    parser.add_argument("--keys", type=int, default=10, help="slow target: distinct partition keys per batch")
    parser.add_argument("--batch", type=int, default=1000, help="slow target: records per batch")
    parser.add_argument("--batches", type=int, default=6, help="slow target: batches per mode")
    parser.add_argument("--records-per-invoke", type=int, default=100, help="RELAY_MAX_RECORDS_PER_INVOCATION")
    parser.add_argument("--concurrency", type=int, default=10, help="RELAY_MAX_CONCURRENT_INVOCATIONS")
    parser.add_argument("--part", choices=["all", "sizes", "slow"], default="all")
    args = parser.parse_args()

    rust = [args.relay or unzip_relay(args.lambda_dir)]
    python = [sys.executable, "-m", "awslambdaric", "relay.handler"]
    if args.part in ("all", "sizes"):
        part_one(rust, python, args.megabytes)
    if args.part in ("all", "slow"):
        part_two(rust, args.delay_ms, args.keys, args.batch, args.batches, args.records_per_invoke, args.concurrency)


if __name__ == "__main__":
    main()
