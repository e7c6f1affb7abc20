"""The harness's own parts, tested against stand-in functions (local_run/fake_functions.py) with the
program's committed example stacks: the moto launcher's patches, the runtime emulator's Lambda
semantics, and the event source mapping's retry/bisect/on-failure rules. The system itself is
tested with the release binaries in test_data_path.py."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_run import envelope
from local_run.harness import LocalRun, RunSpec
from local_run.log_filter import LogLevelFilter, level_of
from local_run.runtime_api import FunctionHost
from local_run.stream import FIRST_SHARD_HASH_KEY


@dataclass(frozen=True)
class FakeRun:
    run: LocalRun
    relay_events_path: Path  # every event the scripted relay received, one JSON line each

    def relay_events(self) -> list[dict[str, Any]]:
        if not self.relay_events_path.exists():
            return []
        return [json.loads(line) for line in self.relay_events_path.read_text().splitlines()]


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeRun]:
    work = tmp_path_factory.mktemp("harness")
    events = work / "events.jsonl"
    stand_in = [sys.executable, "-m", "local_run.fake_functions"]
    spec = RunSpec(
        binaries={
            "producer": [*stand_in, "producer"],
            "relay": [*stand_in, "scripted"],
            "target": [*stand_in, "target"],
        },
        work_dir=work,
        source_settings={"batchingWindowSeconds": "0", "maximumRetryAttempts": "2"},
        target_settings={"faultInjection": "true"},
        extra_function_env={"relay": {"SCRIPT_LOG": str(events)}},
    )
    run = LocalRun.start(spec, progress=lambda m: None)
    try:
        yield FakeRun(run, events)
    finally:
        run.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_invoke_of_a_failing_handler_is_200_with_function_error_header(fake_run: FakeRun) -> None:
    """Through moto's Invoke API, signed with assumed-role credentials of the target account."""
    run = fake_run.run
    stacks = run.stacks
    creds = run.aws.assume(
        run.execution_credentials("relay"), stacks.cross_account_role_arn, "test", external_id=stacks.external_id
    )
    _, data = envelope.produced_record("x", simulate={"function_error": True})
    bad = envelope.delivery_request(
        [envelope.relayed_record(sequence_number="1", partition_key="x", event_id="e", data=data)], "t"
    )
    lam = run.aws.client("lambda", creds)
    resp = lam.invoke(FunctionName=stacks.function_names["target"], Payload=json.dumps(bad).encode())
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Payload"].read())
    assert "simulated function error" in body["errorMessage"]
    # A request of the synchronous payload limit is refused by the Invoke API, the function never sees it.
    limit = run.limits.lambda_sync_payload_limit
    with pytest.raises(ClientError) as err:
        lam.invoke(FunctionName=stacks.function_names["target"], Payload=b'"' + b"x" * (limit - 2) + b'"')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    # The function is not in the source account.
    with pytest.raises(ClientError) as err:
        run.aws.client("lambda", run.admin(stacks.source_account)).invoke(
            FunctionName=stacks.function_names["target"], Payload=b"{}"
        )
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_assume_role_is_counted_and_trust_rules_hold(fake_run: FakeRun) -> None:
    run = fake_run.run
    stacks = run.stacks
    relay_creds = run.execution_credentials("relay")

    def count() -> int:
        return sum(
            1
            for e in run.moto.audit()
            if e["event"] == "assume_role" and e["outcome"] == "ok" and e["role_arn"] == stacks.cross_account_role_arn
        )

    before = count()
    run.aws.assume(relay_creds, stacks.cross_account_role_arn, "c1", external_id=stacks.external_id)
    assert count() == before + 1
    with pytest.raises(ClientError) as err:
        run.aws.assume(relay_creds, stacks.cross_account_role_arn, "c2", external_id="wrong")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):  # another account than the source
        run.aws.assume(
            run.admin(stacks.target_account), stacks.cross_account_role_arn, "c3", external_id=stacks.external_id
        )
    assert count() == before + 1


def script_host(tmp_path: Path, name: str, body: str, timeout_s: float) -> FunctionHost:
    """A function host running `body` as a Python script, after a prelude that imports what the
    scripts use and sets `base` to the runtime API's URL."""
    script = tmp_path / f"{name}.py"
    script.write_text(
        "import json, os, sys, time, urllib.request\n"
        "base = 'http://' + os.environ['AWS_LAMBDA_RUNTIME_API'] + '/2018-06-01/runtime'\n" + body
    )
    return FunctionHost(
        name, [sys.executable, str(script)], env={"PATH": "/usr/bin:/bin"}, arn="arn:x", timeout_s=timeout_s
    )


def test_runtime_emulator_times_out_and_restarts_a_hung_function(tmp_path: Path) -> None:
    host = script_host(
        tmp_path, "hang", "urllib.request.urlopen(base + '/invocation/next').read()\ntime.sleep(60)\n", 1
    )
    try:
        result = host.invoke({})
        assert result.function_error == "Unhandled"
        assert json.loads(result.body)["errorType"] == "Sandbox.Timedout"
        result = host.invoke({})  # a fresh process takes the next invocation
        assert host.starts == 2 and json.loads(result.body)["errorType"] == "Sandbox.Timedout"
    finally:
        host.stop()


def _put(run: LocalRun, datas: list[bytes]) -> tuple[list[str], list[str]]:
    ids = [f"h-{time.time_ns()}-{i}" for i in range(len(datas))]
    with run.esm.paused_polling():
        seqs = run.put_records(list(zip(ids, datas, strict=True)), explicit_hash_key=FIRST_SHARD_HASH_KEY)
    return ids, seqs


def _on_failure_records(run: LocalRun, start_sequence_number: str) -> list[dict[str, Any]]:
    return [
        m
        for m in run.ledger.dead_letters()
        if m.get("KinesisBatchInfo", {}).get("startSequenceNumber") == start_sequence_number
    ]


def test_mapping_checkpoints_at_the_lowest_reported_failure(fake_run: FakeRun) -> None:
    run = fake_run.run
    start = len(fake_run.relay_events())
    ids, seqs = _put(run, [b"ok", b"ok", b"FAIL", b"ok"])
    # the FAIL record always fails: first attempt + 2 retries, each from its sequence number
    assert wait_for(lambda: len(fake_run.relay_events()) - start >= 3)
    assert wait_for(lambda: run.ledger.settled(ids[2:3]))
    events = fake_run.relay_events()[start:]
    sent = [[r["kinesis"]["sequenceNumber"] for r in e["Records"]] for e in events]
    assert sent[0] == seqs
    assert sent[1] == seqs[2:] and sent[2] == seqs[2:], sent
    assert len(sent) == 3
    letter = _on_failure_records(run, seqs[2])
    assert letter and letter[0]["KinesisBatchInfo"]["batchSize"] == 2  # from the checkpoint to the end
    assert letter[0]["KinesisBatchInfo"]["endSequenceNumber"] == seqs[3]


def test_mapping_bisects_on_function_error_without_using_retries(fake_run: FakeRun) -> None:
    run = fake_run.run
    start = len(fake_run.relay_events())
    ids, seqs = _put(run, [b"ok", b"ok", b"ok", b"ERROR"])
    assert wait_for(lambda: run.ledger.settled(ids[3:4]), timeout=30)
    time.sleep(0.5)
    sent = [[r["kinesis"]["sequenceNumber"] for r in e["Records"]] for e in fake_run.relay_events()[start:]]
    # [a b c E] -> [a b] ok, [c E] -> [c] ok, [E] x (1 + 2 retries) -> on-failure
    assert sent == [seqs, seqs[:2], seqs[2:], seqs[2:3], seqs[3:], seqs[3:], seqs[3:]], sent
    letter = _on_failure_records(run, seqs[3])
    assert letter and letter[0]["KinesisBatchInfo"]["batchSize"] == 1
    assert letter[0]["responseContext"]["functionError"] == "Unhandled"


def test_a_crashed_function_is_restarted_from_an_invoke_request_thread(tmp_path: Path) -> None:
    """Invoke over HTTP (a short-lived server thread): the replacement process must survive it."""
    marker = tmp_path / "crashed"
    script = (
        f"marker = {str(marker)!r}\n"
        "while True:\n"
        "    r = urllib.request.urlopen(base + '/invocation/next')\n"
        "    rid = r.headers['Lambda-Runtime-Aws-Request-Id']; r.read()\n"
        "    if not os.path.exists(marker):\n"
        "        open(marker, 'w').close(); sys.exit(3)\n"
        "    answer = urllib.request.Request(base + f'/invocation/{rid}/response', data=b'{\"ok\":1}', method='POST')\n"
        "    urllib.request.urlopen(answer).read()\n"
    )
    host = script_host(tmp_path, "crash", script, 10)
    url = f"{host.url}/2015-03-31/functions/crash/invocations"

    def post() -> Any:
        return urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=20)

    try:
        with post() as first:
            assert first.status == 200 and first.headers["X-Amz-Function-Error"] == "Unhandled"
            assert json.loads(first.read())["errorType"] == "Runtime.ExitError"
        time.sleep(0.5)  # a replacement killed with its spawning thread would be dead by now
        with post() as second:
            assert second.status == 200 and second.headers["X-Amz-Function-Error"] is None
            assert json.loads(second.read()) == {"ok": 1}
        time.sleep(0.5)
        assert host.alive() and host.starts == 2
    finally:
        host.stop()


def test_a_recycled_function_answers_the_next_invocation(tmp_path: Path) -> None:
    """The replaced process was waiting for its next invocation: that wait must not take the
    invocation meant for the fresh process."""
    script = (
        "while True:\n"
        "    r = urllib.request.urlopen(base + '/invocation/next')\n"
        "    rid = r.headers['Lambda-Runtime-Aws-Request-Id']; r.read()\n"
        "    body = json.dumps({'pid': os.getpid()}).encode()\n"
        "    answer = urllib.request.Request(base + f'/invocation/{rid}/response', data=body, method='POST')\n"
        "    urllib.request.urlopen(answer).read()\n"
    )
    host = script_host(tmp_path, "echo", script, 5)
    try:
        first = host.invoke({}).json()["pid"]
        time.sleep(0.3)  # the process is back in its long poll for the next invocation
        host.recycle()
        second = host.invoke({})
        assert second.function_error is None, second.body
        assert second.json()["pid"] != first and host.starts == 2
    finally:
        host.stop()


# ---- Lambda's log-level filtering (local_run/log_filter.py) ----

STAMP = "2025-11-25T04:31:37.125Z"


def test_a_lines_level_is_its_own_only_with_a_known_level_and_an_rfc_3339_timestamp() -> None:
    def line(**fields: Any) -> str:
        return json.dumps(fields)

    cases = {
        line(level="WARN", timestamp=STAMP, message="m"): "WARN",
        line(level="debug", timestamp="2024-11-02T16:51:31.587199Z"): "DEBUG",  # the guide's example
        line(level="FATAL", timestamp="2025-11-25t04:31:37+02:00"): "FATAL",
        line(level="error", timestamp="2025-11-25T04:31:37-00:30"): "ERROR",
        line(level="TRACE", timestamp="2016-12-31T23:59:60Z"): "TRACE",  # a leap second
        # Missing or invalid level: INFO.
        line(timestamp=STAMP): "INFO",
        line(level="WARNING", timestamp=STAMP): "INFO",
        line(level=4, timestamp=STAMP): "INFO",
        # Missing or invalid timestamp: INFO, whatever the level (the EMF lines' old defect).
        line(level="ERROR"): "INFO",
        line(level="ERROR", timestamp=1764045097125): "INFO",
        line(level="ERROR", timestamp="2025-11-25 04:31:37Z"): "INFO",
        line(level="ERROR", timestamp="2025-11-25T04:31:37"): "INFO",
        line(level="ERROR", timestamp="2025-11-25"): "INFO",
        line(level="ERROR", timestamp="2025-13-25T04:31:37Z"): "INFO",
        line(level="ERROR", timestamp="2025-11-25T04:31:37+25:00"): "INFO",
        line(level="ERROR", timestamp="2025-11-25T04:31:37.Z"): "INFO",
        # Not a JSON object: INFO.
        "thread 'main' panicked at src/main.rs:1:1": "INFO",
        json.dumps(["ERROR", STAMP]): "INFO",
        "": "INFO",
    }
    assert {text: level_of(text) for text in cases} == cases


def test_lines_below_the_application_level_are_dropped_only_with_the_json_format() -> None:
    lines = {
        level: json.dumps({"level": level, "timestamp": STAMP})
        for level in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
    }
    plain = "plain text"
    for configured, kept in [
        ("TRACE", {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", plain}),
        ("INFO", {"INFO", "WARN", "ERROR", "FATAL", plain}),
        ("warn", {"WARN", "ERROR", "FATAL"}),
        ("ERROR", {"ERROR", "FATAL"}),
        ("FATAL", {"FATAL"}),
    ]:
        f = LogLevelFilter.from_env({"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": configured})
        found = {name for name, text in lines.items() if f.keeps(text)} | ({plain} if f.keeps(plain) else set())
        assert found == kept, configured
    # JSON without a level configured: Lambda's default, INFO.
    default = LogLevelFilter.from_env({"AWS_LAMBDA_LOG_FORMAT": "JSON"})
    assert default.keeps(lines["INFO"]) and not default.keeps(lines["DEBUG"])
    # The Text format filters nothing.
    text = LogLevelFilter.from_env({"AWS_LAMBDA_LOG_FORMAT": "Text", "AWS_LAMBDA_LOG_LEVEL": "FATAL"})
    assert all(text.keeps(line) for line in [*lines.values(), plain])
    assert LogLevelFilter.from_env({}).keeps(lines["TRACE"])
    with pytest.raises(ValueError, match="LOUD"):
        LogLevelFilter.from_env({"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "LOUD"})


def test_the_emulator_filters_a_functions_output_before_anything_reads_it(tmp_path: Path) -> None:
    """stdout and stderr, through the host: what is dropped reaches neither the logs the harness
    reads nor the log file."""
    script = tmp_path / "chatty.py"
    script.write_text(
        "import json, sys\n"
        f"stamp = {STAMP!r}\n"
        "print(json.dumps({'level': 'INFO', 'timestamp': stamp, 'message': 'info'}))\n"
        "print(json.dumps({'level': 'WARN', 'timestamp': stamp, 'message': 'warn'}))\n"
        "print(json.dumps({'level': 'ERROR', 'message': 'error without a timestamp'}))\n"
        "print('plain text on stdout')\n"
        "print(json.dumps({'level': 'ERROR', 'timestamp': stamp, 'message': 'on stderr'}), file=sys.stderr)\n"
        "print('plain text on stderr', file=sys.stderr)\n"
        "print(json.dumps({'level': 'FATAL', 'timestamp': stamp, 'message': 'last'}))\n"
    )
    log_path = tmp_path / "chatty.log"
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"}
    host = FunctionHost("chatty", [sys.executable, str(script)], env=env, arn="arn:x", log_path=str(log_path))
    try:
        host.start()
        # "last" is the final line: once it is read, every other line was (stderr is unbuffered).
        assert host.wait_for_log(lambda line: line.get("message") == "last", timeout=10), host.logs
    finally:
        host.stop()
    kept = ["warn", "on stderr", "last"]
    assert sorted(line["message"] for line in host.logs) == sorted(kept)
    assert sorted(json.loads(line)["message"] for line in log_path.read_text().splitlines()) == sorted(kept)
    assert host.filtered_lines == 4


# ---- init failures and the deadline in the runtime emulator ----


def fake_function_host(name: str, mode: str, timeout_s: float) -> FunctionHost:
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "ERROR"}
    return FunctionHost(
        name, [sys.executable, "-m", "local_run.fake_functions", mode], env=env, arn="arn:x", timeout_s=timeout_s
    )


def test_a_function_that_dies_during_init_fails_the_invocation_at_once() -> None:
    """Lambda answers at once (the runtime's exit, or the error it posted to /init/error), not
    after the function's timeout."""
    host = fake_function_host("init-exit", "init_exit", timeout_s=15)
    try:
        for attempt in range(2):  # each invocation starts a fresh process, which dies again
            started = time.monotonic()
            result = host.invoke({})
            assert time.monotonic() - started < 5, "answered only at the timeout"
            assert result.function_error == "Unhandled"
            error = result.json()
            assert error["errorType"] == "Runtime.ExitError", error
            assert error["errorMessage"].endswith("Error: Runtime exited with error: exit status 3"), error
            assert host.starts == attempt + 1 and host.timeouts == 0
        # Its FATAL line passes the ERROR filter.
        assert any(line.get("message") == "cannot start: a setting is missing" for line in host.logs)
    finally:
        host.stop()
    host = fake_function_host("init-error", "init_error", timeout_s=15)
    try:
        started = time.monotonic()
        result = host.invoke({})
        assert time.monotonic() - started < 5, "answered only at the timeout"
        assert result.function_error == "Unhandled"
        assert result.json() == {"errorType": "InvalidConfiguration", "errorMessage": "TARGET_ROLE_ARN is not set"}
        assert len(host.init_errors) == 1
        assert wait_for(lambda: not host.alive(), timeout=10), "the failed environment is stopped"
    finally:
        host.stop()


def test_an_invocation_ends_at_its_deadline_and_an_answer_before_it_counts(tmp_path: Path) -> None:
    """No grace after the deadline (`Lambda-Runtime-Deadline-Ms`), as in Lambda; an answer given
    shortly before it is the answer."""
    script = (
        "while True:\n"
        "    r = urllib.request.urlopen(base + '/invocation/next')\n"
        "    rid = r.headers['Lambda-Runtime-Aws-Request-Id']\n"
        "    deadline_ms = int(r.headers['Lambda-Runtime-Deadline-Ms']); r.read()\n"
        "    time.sleep(max(0.0, deadline_ms / 1000 - time.time() - 0.15))\n"
        "    answer = urllib.request.Request(base + f'/invocation/{rid}/response', data=b'{\"just\":1}', method='POST')\n"
        "    urllib.request.urlopen(answer).read()\n"
        "    time.sleep(5)\n"
    )
    host = script_host(tmp_path, "late", script, 2)
    try:
        result = host.invoke({})  # answered 150 ms before the deadline
        assert result.function_error is None and result.json() == {"just": 1}
        started = time.monotonic()
        result = host.invoke({})  # still asleep from the first: its deadline passes
        elapsed = time.monotonic() - started
        assert json.loads(result.body)["errorType"] == "Sandbox.Timedout"
        assert 1.9 < elapsed < 2.5, elapsed
        assert host.timeouts == 1
    finally:
        host.stop()
