"""The relay in Python (boto3), as the CDK + Python sample this project replaces would write it.

Baseline for `make bench` only: it runs under awslambdaric against the same local Runtime API
as the Rust relay, with the same configuration variables, so start-up time and memory can be
compared side by side. Same behaviour as the Rust relay: assume the target role once per
container (refreshed near expiry), envelopes under the 6 MB Invoke limit, rejected records to the
dead-letter bucket, everything else in batchItemFailures.
"""

import base64
import datetime
import json
import os
import uuid
from typing import Any

import boto3

ROLE_ARN = os.environ["TARGET_ROLE_ARN"]
EXTERNAL_ID = os.environ["TARGET_EXTERNAL_ID"]
FUNCTION = os.environ["TARGET_FUNCTION_NAME"]
BUCKET = os.environ["DEAD_LETTER_BUCKET"]
SESSION_SECONDS = int(os.environ.get("ASSUME_ROLE_SESSION_SECONDS", "3600"))
MAX_PAYLOAD = int(os.environ.get("RELAY_MAX_PAYLOAD_BYTES", str(6 * 1024 * 1024 - 1)))

sts = boto3.client("sts")
s3 = boto3.client("s3")
_target: dict[str, Any] = {"client": None, "expires": None}


def target_client():
    now = datetime.datetime.now(datetime.UTC)
    if _target["client"] is None or _target["expires"] - now < datetime.timedelta(minutes=5):
        creds = sts.assume_role(
            RoleArn=ROLE_ARN,
            ExternalId=EXTERNAL_ID,
            DurationSeconds=SESSION_SECONDS,
            RoleSessionName=f"{os.environ.get('AWS_LAMBDA_FUNCTION_NAME', 'relay')}-{uuid.uuid4().hex[:8]}",
        )["Credentials"]
        _target["client"] = boto3.client(
            "lambda",
            region_name=os.environ.get("TARGET_REGION") or None,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        _target["expires"] = creds["Expiration"]
    return _target["client"]


def envelopes(records):
    chunk: list[dict[str, str]] = []
    size = 0
    for r in records:
        item = {
            "sequence_number": r["kinesis"]["sequenceNumber"],
            "partition_key": r["kinesis"]["partitionKey"],
            "event_id": r.get("eventID", ""),
            "data": r["kinesis"]["data"],
        }
        n = len(json.dumps(item)) + 1
        if chunk and size + n + 64 > MAX_PAYLOAD:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += n
    if chunk:
        yield chunk


def handler(event, _context):
    records = event.get("Records", [])
    failures = []
    for chunk in envelopes(records):
        seqs = [r["sequence_number"] for r in chunk]
        try:
            reply = target_client().invoke(
                FunctionName=FUNCTION,
                Payload=json.dumps({"version": 1, "delivery_id": uuid.uuid4().hex[:12], "records": chunk}).encode(),
            )
            body = json.loads(reply["Payload"].read())
            if reply.get("FunctionError") or body.get("version") != 1:
                failures += seqs
                continue
            results = {r["sequence_number"]: r for r in body["results"]}
        except Exception as error:  # every failure is retried by the event source mapping
            print(json.dumps({"message": "target invocation failed", "error": str(error)}))
            failures += seqs
            continue
        for record in chunk:
            result = results.get(record["sequence_number"], {"status": "retry"})
            if result["status"] == "rejected":
                try:
                    s3.put_object(
                        Bucket=BUCKET,
                        Key=f"relay/rejected_by_target/{record['event_id'].replace(':', '/')}.json",
                        Body=json.dumps(
                            {
                                "kind": "rejected_by_target",
                                "reason": result.get("reason", ""),
                                "partition_key": record["partition_key"],
                                "sequence_number": record["sequence_number"],
                                "data_bytes": len(base64.b64decode(record["data"])),
                            }
                        ),
                    )
                except Exception:
                    failures.append(record["sequence_number"])
            elif result["status"] != "ok":
                failures.append(record["sequence_number"])
    print(json.dumps({"message": "invocation summary", "records": len(records), "failed": len(failures)}))
    return {"batchItemFailures": [{"itemIdentifier": s} for s in failures]}
