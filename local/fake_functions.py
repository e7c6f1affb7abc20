"""Stand-ins for the Rust functions, speaking the same Lambda runtime API and contracts.

Used only by the harness's own tests (tests/e2e/test_harness_*.py), so the event source mapping
emulator and the runtime emulator can be exercised quickly and with behaviour the real
functions do not offer (a relay that crashes, returns garbage, ...). The end-to-end tests of the
system use the release binaries, never these.

Usage: python fake_functions.py producer|relay|target|scripted
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

API = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")


def log(**fields):
    print(json.dumps(fields), flush=True)


def runtime_loop(handler):
    base = f"http://{API}/2018-06-01/runtime"
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


def producer():
    import boto3

    kinesis = boto3.client("kinesis")
    n = int(os.environ.get("PRODUCER_RECORDS_PER_INVOCATION", "1"))
    container = uuid.uuid4().hex[:8]
    state = {"seq": 0}

    def handle(event):
        entries, ids = [], []
        for _ in range(n):
            state["seq"] += 1
            rid = str(uuid.uuid4())
            doc = {"id": rid, "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                   "sequence": state["seq"], "producer": container, "body": {"message": "hello"}}
            entries.append({"Data": json.dumps(doc).encode(), "PartitionKey": rid})
            ids.append(rid)
        resp = kinesis.put_records(StreamName=os.environ["STREAM_NAME"], Records=entries)
        if resp.get("FailedRecordCount"):
            raise RuntimeError(f"{resp['FailedRecordCount']} records failed")
        log(message="invocation summary", records_written=n)
        return {"records_written": n, "record_ids": ids, "put_calls": 1, "retried_entries": 0}

    return handle


def relay():
    import boto3

    sts = boto3.client("sts")
    creds = sts.assume_role(RoleArn=os.environ["TARGET_ROLE_ARN"], RoleSessionName="fake-relay",
                            ExternalId=os.environ["TARGET_EXTERNAL_ID"])["Credentials"]
    lam = boto3.client("lambda", aws_access_key_id=creds["AccessKeyId"],
                       aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    sqs = boto3.client("sqs")

    def handle(event):
        records = event["Records"]
        envelope = {"version": 1, "delivery_id": str(uuid.uuid4()), "records": [
            {"sequence_number": r["kinesis"]["sequenceNumber"], "partition_key": r["kinesis"]["partitionKey"],
             "event_id": r["eventID"], "data": r["kinesis"]["data"]} for r in records]}
        resp = lam.invoke(FunctionName=os.environ["TARGET_FUNCTION_NAME"], Payload=json.dumps(envelope).encode())
        body = resp["Payload"].read()
        if resp.get("FunctionError"):
            return {"batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in records]}
        failures = []
        by_seq = {r["kinesis"]["sequenceNumber"]: r for r in records}
        for result in json.loads(body)["results"]:
            if result["status"] == "retry":
                failures.append({"itemIdentifier": result["sequence_number"]})
            elif result["status"] == "rejected":
                r = by_seq[result["sequence_number"]]
                sqs.send_message(QueueUrl=os.environ["DEAD_LETTER_QUEUE_URL"], MessageBody=json.dumps({
                    "kind": "rejected_by_target", "reason": result["reason"],
                    "partition_key": r["kinesis"]["partitionKey"], "sequence_number": result["sequence_number"],
                    "event_id": r["eventID"], "event_source_arn": r["eventSourceARN"],
                    "data_base64": r["kinesis"]["data"], "data_bytes": len(base64.b64decode(r["kinesis"]["data"]))}))
        return {"batchItemFailures": failures}

    return handle


def target():
    seen: dict[str, int] = {}

    def handle(event):
        results = []
        for rec in event["records"]:
            seq = rec["sequence_number"]
            try:
                doc = json.loads(base64.b64decode(rec["data"]))
                rid = doc["id"]
            except Exception as err:
                log(message="record processed", record_id=rec["partition_key"], sequence_number=seq,
                    outcome="rejected", duplicate=False)
                results.append({"sequence_number": seq, "status": "rejected", "reason": f"not a produced record: {err}"})
                continue
            simulate = doc.get("body", {}).get("simulate") or {}
            if simulate.get("function_error"):
                raise RuntimeError(f"simulated function error for {rid}")
            seen[rid] = seen.get(rid, 0) + 1
            if seen[rid] <= simulate.get("retry_times", 0):
                log(message="record processed", record_id=rid, sequence_number=seq, outcome="retry", duplicate=False)
                results.append({"sequence_number": seq, "status": "retry", "reason": "simulated"})
                continue
            created = datetime.datetime.fromisoformat(doc["created_at"].replace("Z", "+00:00"))
            latency = (datetime.datetime.now(datetime.timezone.utc) - created).total_seconds() * 1000
            log(message="record processed", record_id=rid, sequence_number=seq, outcome="ok",
                latency_ms=latency, duplicate=False)
            results.append({"sequence_number": seq, "status": "ok"})
        return {"version": 1, "results": results}

    return handle


def scripted():
    """Answers from a script file (JSON list of actions, one per invocation) for ESM tests.

    Each action: {"fail": [seq, ...]} -> batchItemFailures; {"error": true} -> function error;
    {"fail_seq_of": "<marker>"}: fail every record whose data contains the marker. Every event is
    appended to SCRIPT_LOG.
    """
    path = os.environ["SCRIPT"]

    def handle(event):
        with open(os.environ["SCRIPT_LOG"], "a") as f:
            f.write(json.dumps(event) + "\n")
        rules = json.load(open(path))
        failures = []
        for r in event["Records"]:
            data = base64.b64decode(r["kinesis"]["data"]).decode()
            if "ERROR" in data and rules.get("error_marker_is_function_error", True):
                raise RuntimeError("record asks for a function error")
            if "FAIL" in data:
                failures.append({"itemIdentifier": r["kinesis"]["sequenceNumber"]})
        return {"batchItemFailures": failures}

    return handle


if __name__ == "__main__":
    runtime_loop({"producer": producer, "relay": relay, "target": target, "scripted": scripted}[sys.argv[1]]())
