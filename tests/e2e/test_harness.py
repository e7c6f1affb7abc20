"""The harness's own parts, tested against stand-in functions (local/fake_functions.py) with the
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

from local import envelope
from local.harness import LocalRun, RunSpec
from local.runtime_api import FunctionHost
from local.stream import FIRST_SHARD_HASH_KEY


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
    stand_in = [sys.executable, "-m", "local.fake_functions"]
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
