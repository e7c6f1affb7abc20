"""The harness's own parts, tested against stand-in functions (local/fake_functions.py) and a
stand-in Pulumi program (fixtures/project): the moto launcher's patches, the runtime
emulator's Lambda semantics, and the event source mapping's retry/bisect/on-failure rules.
The system itself is tested with the release binaries in test_data_path.py."""

from __future__ import annotations

import base64
import json
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import ROOT, SHARD_ZERO
from local.harness import LocalRun, RunOptions
from local.runtime_api import FunctionHost, _terminate

FAKE = str(ROOT / "local" / "fake_functions.py")


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("harness")
    script = work / "script.json"
    script.write_text("{}")
    binaries = {f: [sys.executable, FAKE, f] for f in ("producer", "target")}
    binaries["relay"] = [sys.executable, FAKE, "scripted"]
    run = LocalRun(RunOptions(binaries=binaries, work_dir=work, project_root=ROOT / "tests/e2e/fixtures/project",
                              source_overrides={"batchingWindowSeconds": "0", "maximumRetryAttempts": "2"},
                              target_overrides={"faultInjection": "true"}),
                   progress=lambda m: None)
    run.start()
    relay = run.hosts["relay"]
    relay.env.update({"SCRIPT": str(script), "SCRIPT_LOG": str(work / "events.jsonl")})
    # restart the scripted relay with its script variables
    _terminate(relay._proc)
    relay.start()
    run.events_path = work / "events.jsonl"
    yield run
    run.stop()


def relay_events(run):
    if not run.events_path.exists():
        return []
    return [json.loads(l) for l in run.events_path.read_text().splitlines()]


def wait_for(predicate, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_invoke_of_a_failing_handler_is_200_with_function_error_header(fake_run):
    """Through moto's Invoke API, signed with assumed-role credentials of the target account."""
    creds = fake_run.assume(fake_run.execution_creds["relay"], fake_run.cross_account_role_arn,
                            "test", ExternalId="local-demo-external-id-7f3c")
    bad = {"version": 1, "delivery_id": "t", "records": [{
        "sequence_number": "1", "partition_key": "p", "event_id": "e",
        "data": base64.b64encode(json.dumps({"id": "x", "created_at": "2026-01-01T00:00:00Z",
                                             "body": {"simulate": {"function_error": True}}}).encode()).decode()}]}
    lam = fake_run.client("lambda", creds)
    resp = lam.invoke(FunctionName=fake_run.function_names["target"], Payload=json.dumps(bad).encode())
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Payload"].read())
    assert "simulated function error" in body["errorMessage"]
    # A request over 6 MB is refused by the Invoke API, the function never sees it.
    with pytest.raises(ClientError) as err:
        lam.invoke(FunctionName=fake_run.function_names["target"], Payload=b'"' + b"x" * (6 * 1024 * 1024) + b'"')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    # The function is not in the source account.
    with pytest.raises(ClientError) as err:
        fake_run.client("lambda", fake_run.admins[fake_run.source_account]).invoke(
            FunctionName=fake_run.function_names["target"], Payload=b"{}")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_assume_role_is_counted_and_trust_rules_hold(fake_run):
    count = lambda: sum(1 for e in fake_run.audit() if e["event"] == "assume_role" and e["outcome"] == "ok"
                        and e["role_arn"] == fake_run.cross_account_role_arn)
    before = count()
    fake_run.assume(fake_run.execution_creds["relay"], fake_run.cross_account_role_arn, "c1",
                    ExternalId="local-demo-external-id-7f3c")
    assert count() == before + 1
    with pytest.raises(ClientError) as err:
        fake_run.assume(fake_run.execution_creds["relay"], fake_run.cross_account_role_arn, "c2", ExternalId="wrong")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):  # another account than the source
        fake_run.assume(fake_run.admins[fake_run.target_account], fake_run.cross_account_role_arn, "c3",
                        ExternalId="local-demo-external-id-7f3c")
    assert count() == before + 1


def test_runtime_emulator_times_out_and_restarts_a_hung_function(tmp_path):
    hang = tmp_path / "hang.py"
    hang.write_text(
        "import os, time, urllib.request\n"
        "base = 'http://' + os.environ['AWS_LAMBDA_RUNTIME_API'] + '/2018-06-01/runtime'\n"
        "urllib.request.urlopen(base + '/invocation/next').read()\n"
        "time.sleep(60)\n")
    host = FunctionHost("hang", [sys.executable, str(hang)], {"PATH": "/usr/bin:/bin"}, arn="arn:x", timeout_s=1)
    try:
        result = host.invoke({})
        assert result.function_error == "Unhandled"
        assert json.loads(result.body)["errorType"] == "Sandbox.Timedout"
        result = host.invoke({})  # a fresh process takes the next invocation
        assert host.starts == 2 and json.loads(result.body)["errorType"] == "Sandbox.Timedout"
    finally:
        host.stop()


def _put(run, datas):
    ids = [f"h-{time.time_ns()}-{i}" for i in range(len(datas))]
    run.esm.paused.set()
    try:
        seqs = run.put_records(list(zip(ids, datas)), explicit_hash_key=SHARD_ZERO)
    finally:
        run.esm.paused.clear()
    return ids, seqs


def test_mapping_checkpoints_at_the_lowest_reported_failure(fake_run):
    start = len(relay_events(fake_run))
    ids, seqs = _put(fake_run, [b"ok", b"ok", b"FAIL", b"ok"])
    # the FAIL record always fails: first attempt + 2 retries, each from its sequence number
    assert wait_for(lambda: len(relay_events(fake_run)) - start >= 3)
    assert wait_for(lambda: fake_run.ledger.settled(ids[2:3]))
    events = relay_events(fake_run)[start:]
    sent = [[r["kinesis"]["sequenceNumber"] for r in e["Records"]] for e in events]
    assert sent[0] == seqs
    assert sent[1] == seqs[2:] and sent[2] == seqs[2:], sent
    assert len(sent) == 3
    letter = [m for m in fake_run.ledger.dead_letters if m.get("KinesisBatchInfo", {}).get("startSequenceNumber") == seqs[2]]
    assert letter and letter[0]["KinesisBatchInfo"]["batchSize"] == 2  # from the checkpoint to the end
    assert letter[0]["KinesisBatchInfo"]["endSequenceNumber"] == seqs[3]


def test_mapping_bisects_on_function_error_without_using_retries(fake_run):
    start = len(relay_events(fake_run))
    ids, seqs = _put(fake_run, [b"ok", b"ok", b"ok", b"ERROR"])
    assert wait_for(lambda: fake_run.ledger.settled(ids[3:4]), timeout=30)
    time.sleep(0.5)
    sent = [[r["kinesis"]["sequenceNumber"] for r in e["Records"]] for e in relay_events(fake_run)[start:]]
    # [a b c E] -> [a b] ok, [c E] -> [c] ok, [E] x (1 + 2 retries) -> on-failure
    assert sent == [seqs, seqs[:2], seqs[2:], seqs[2:3], seqs[3:], seqs[3:], seqs[3:]], sent
    letter = [m for m in fake_run.ledger.dead_letters if m.get("KinesisBatchInfo", {}).get("startSequenceNumber") == seqs[3]]
    assert letter and letter[0]["KinesisBatchInfo"]["batchSize"] == 1
    assert letter[0]["responseContext"]["functionError"] == "Unhandled"


def test_a_crashed_function_is_restarted_from_an_invoke_request_thread(tmp_path):
    """Invoke over HTTP (a short-lived server thread): the replacement process must survive it."""
    marker = tmp_path / "crashed"
    script = tmp_path / "crash_once.py"
    script.write_text(
        "import os, sys, urllib.request\n"
        "base = 'http://' + os.environ['AWS_LAMBDA_RUNTIME_API'] + '/2018-06-01/runtime'\n"
        f"marker = {str(marker)!r}\n"
        "while True:\n"
        "    r = urllib.request.urlopen(base + '/invocation/next')\n"
        "    rid = r.headers['Lambda-Runtime-Aws-Request-Id']; r.read()\n"
        "    if not os.path.exists(marker):\n"
        "        open(marker, 'w').close(); sys.exit(3)\n"
        "    urllib.request.urlopen(urllib.request.Request(base + f'/invocation/{rid}/response', data=b'{\"ok\":1}', method='POST')).read()\n")
    host = FunctionHost("crash", [sys.executable, str(script)], {"PATH": "/usr/bin:/bin"}, arn="arn:x", timeout_s=10)
    url = f"{host.url}/2015-03-31/functions/crash/invocations"
    post = lambda: urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=20)
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
