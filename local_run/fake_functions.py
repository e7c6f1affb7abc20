"""Stand-ins for the Rust functions, speaking the same Lambda runtime API and contracts.

Used only by the harness's own tests (tests/e2e/test_harness.py), so the event source mapping
emulator and the runtime emulator can be exercised quickly and with behaviour the real
functions do not offer (a relay that crashes, returns garbage, ...). The end-to-end tests of the
system use the release binaries, never these.

Usage: python -m local_run.fake_functions producer|relay|target|scripted|pid|init_exit|init_error
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from local_run import envelope
from local_run.dead_letters import layout
from local_run.envelope import Status

Handler = Callable[[Any], Any]


def log(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def runtime_loop(handler: Handler) -> None:
    base = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"
    while True:
        try:
            with urllib.request.urlopen(f"{base}/invocation/next", timeout=None) as r:
                request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
                event = json.loads(r.read() or b"null")
        except Exception:
            time.sleep(0.2)
            continue
        try:
            result = handler(event)
            url, data = f"{base}/invocation/{request_id}/response", json.dumps(result).encode()
        except Exception as err:  # a handler error, as the runtime reports it
            url = f"{base}/invocation/{request_id}/error"
            data = json.dumps({"errorType": type(err).__name__, "errorMessage": str(err)}).encode()
        urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST")).read()


def producer() -> Handler:
    import boto3

    kinesis = boto3.client("kinesis")
    n = int(os.environ.get("PRODUCER_RECORDS_PER_INVOCATION", "1"))
    container = uuid.uuid4().hex[:8]
    sequence = 0

    def handle(event: Any) -> dict[str, Any]:
        nonlocal sequence
        records = []
        for _ in range(n):
            sequence += 1
            records.append(envelope.produced_record(message="hello", sequence=sequence, producer=container))
        entries = [{"Data": data, "PartitionKey": rid} for rid, data in records]
        resp = kinesis.put_records(StreamName=os.environ["STREAM_NAME"], Records=entries)
        if resp.get("FailedRecordCount"):
            raise RuntimeError(f"{resp['FailedRecordCount']} records failed")
        log(message="invocation summary", records_written=n)
        return {"records_written": n, "record_ids": [rid for rid, _ in records], "put_calls": 1, "retried_entries": 0}

    return handle


def relay() -> Handler:
    import boto3

    sts = boto3.client("sts")
    creds = sts.assume_role(
        RoleArn=os.environ["TARGET_ROLE_ARN"],
        RoleSessionName="fake-relay",
        ExternalId=os.environ["TARGET_EXTERNAL_ID"],
    )["Credentials"]
    lam = boto3.client(
        "lambda",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    s3 = boto3.client("s3")

    def handle(event: Any) -> dict[str, Any]:
        records = event["Records"]
        batch_id = uuid.uuid4().hex[:12]
        request = envelope.delivery_request(
            (envelope.relayed_record_from_kinesis(r) for r in records), delivery_id=f"{batch_id}-0"
        )
        resp = lam.invoke(FunctionName=os.environ["TARGET_FUNCTION_NAME"], Payload=json.dumps(request).encode())
        body = resp["Payload"].read()
        if resp.get("FunctionError"):
            return {"batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in records]}
        failures = []
        by_seq = {r["kinesis"]["sequenceNumber"]: r for r in records}
        for result in json.loads(body)["results"]:
            if result["status"] == Status.RETRY:
                failures.append({"itemIdentifier": result["sequence_number"]})
            elif result["status"] == Status.REJECTED:
                letter = envelope.rejected_dead_letter(
                    by_seq[result["sequence_number"]],
                    result["reason"],
                    batch_id=batch_id,
                    delivery_id=request["delivery_id"],
                )
                s3.put_object(
                    Bucket=os.environ["DEAD_LETTER_BUCKET"],
                    Key=f"{layout().relay_prefix}stand-in/{uuid.uuid4()}.json",
                    Body=json.dumps(letter).encode(),
                )
        return {"batchItemFailures": failures}

    return handle


def target() -> Handler:
    seen: dict[str, int] = {}

    def handle(event: Any) -> dict[str, Any]:
        results = []
        for rec in event["records"]:
            seq = rec["sequence_number"]
            try:
                doc = json.loads(envelope.record_data(rec))
                rid = doc["id"]
            except Exception as err:
                log(
                    message="record processed",
                    record_id=rec["partition_key"],
                    sequence_number=seq,
                    outcome="rejected",
                    duplicate=False,
                )
                results.append(envelope.record_result(seq, Status.REJECTED, f"not a produced record: {err}"))
                continue
            simulate = doc.get("body", {}).get("simulate") or {}
            if simulate.get("function_error"):
                raise RuntimeError(f"simulated function error for {rid}")
            seen[rid] = seen.get(rid, 0) + 1
            if seen[rid] <= simulate.get("retry_times", 0):
                log(message="record processed", record_id=rid, sequence_number=seq, outcome="retry", duplicate=False)
                results.append(envelope.record_result(seq, Status.RETRY, "simulated"))
                continue
            created = datetime.datetime.fromisoformat(doc["created_at"].replace("Z", "+00:00"))
            latency = (datetime.datetime.now(datetime.UTC) - created).total_seconds() * 1000
            log(
                message="record processed",
                record_id=rid,
                sequence_number=seq,
                outcome="ok",
                latency_ms=latency,
                duplicate=False,
            )
            results.append(envelope.record_result(seq, Status.OK))
        return envelope.delivery_response(results)

    return handle


def scripted() -> Handler:
    """A relay that fails records by their content, for the event source mapping's tests.

    A record whose data contains ERROR fails the invocation (a function error); one that
    contains FAIL is reported in batchItemFailures. Every event is appended to SCRIPT_LOG.
    """

    def handle(event: Any) -> dict[str, Any]:
        with open(os.environ["SCRIPT_LOG"], "a") as f:
            f.write(json.dumps(event) + "\n")
        failures = []
        for r in event["Records"]:
            data = base64.b64decode(r["kinesis"]["data"]).decode()
            if "ERROR" in data:
                raise RuntimeError("record asks for a function error")
            if "FAIL" in data:
                failures.append({"itemIdentifier": r["kinesis"]["sequenceNumber"]})
        return {"batchItemFailures": failures}

    return handle


def pid() -> Handler:
    """Answers every event with its process id (a new process shows as a new id)."""
    return lambda event: {"pid": os.getpid()}


def init_exit() -> Handler:
    """Dies during init, as a function with a configuration error does: a line, then exit 3,
    without asking for an invocation."""
    log(message="cannot start: a setting is missing", level="FATAL", timestamp="2025-11-25T04:31:37.125Z")
    sys.exit(3)


def init_error() -> Handler:
    """Reports an init error to the runtime API (`/init/error`), as a runtime that catches its
    own start-up failure does, then waits to be stopped."""
    base = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"
    error = {"errorType": "InvalidConfiguration", "errorMessage": "TARGET_ROLE_ARN is not set"}
    request = urllib.request.Request(f"{base}/init/error", data=json.dumps(error).encode(), method="POST")
    request.add_header("Lambda-Runtime-Function-Error-Type", "InvalidConfiguration")
    urllib.request.urlopen(request).read()
    time.sleep(60)
    sys.exit(1)


if __name__ == "__main__":
    handlers = {
        "producer": producer,
        "relay": relay,
        "target": target,
        "scripted": scripted,
        "pid": pid,
        "init_exit": init_exit,
        "init_error": init_error,
    }
    runtime_loop(handlers[sys.argv[1]]())
