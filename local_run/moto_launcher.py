"""moto's standalone server with the two things the local run needs that moto lacks.

1. Lambda Invoke runs the function. moto 5.2 without Docker only stubs Invoke; here
   `LambdaFunction.invoke` is replaced by a POST of the payload to the local runtime emulator
   that hosts the real release binary (routes: function ARN -> emulator URL). The answer keeps
   Lambda's semantics: a handler error is HTTP 200 with `X-Amz-Function-Error: Unhandled` and
   the error JSON as body, and a request of LOCAL_SYNC_PAYLOAD_LIMIT bytes or more (Lambda's
   6 MB) is refused with 413 RequestEntityTooLargeException. moto still resolves the function in the account of the
   signing credentials, so a function registered only in the target account is found only
   with that account's (assumed-role) credentials.
2. Kinesis streams of a maximum record size (CreateStream's MaxRecordSizeInKiB, 1024 to 10240,
   shown by DescribeStreamSummary): moto 5.2.5 ignores the parameter and refuses any record over
   1 MiB, and any PutRecords call over 5 MiB. Here PutRecords and PutRecord refuse a record
   (data and partition key) over the stream's own maximum, and PutRecords a call over 10 MiB, as
   the Kinesis API documents them now; UpdateMaxRecordSize is not modelled (the local run creates
   its stream at the size the template sets).
3. An audit of STS AssumeRole and Lambda Invoke calls (one JSON line each, with the calling
   access key and the account moto resolved), so the harness counts AssumeRole calls instead
   of trusting a constant. Optional trust rules refuse AssumeRole on a role without its
   external id or from another account: moto evaluates no trust policy at all.

This patches moto internals, so moto is pinned (tools/requirements.txt) and the launcher has
its own tests (tests/e2e/test_harness.py).

Environment (set by `local_run.moto_server`):
  LOCAL_SYNC_PAYLOAD_LIMIT  Lambda's synchronous payload limit in bytes (`infra --limits`; passed
                        in, so this process does not run the infra binary)
  LOCAL_LAMBDA_ROUTES   JSON {"<function arn>": "http://127.0.0.1:<port>"}
  LOCAL_AUDIT_LOG       path of the JSON-lines audit file
  LOCAL_TRUST_RULES     JSON {"<role arn>": {"external_id": "...", "principal_account": "..."}}
  LOCAL_FAULTS          optional: the fault matrix of `make soak` (`local_run.faults`); its moto
                        classes are injected here and each injection is an audit line
                        {"event": "fault", "class": ...}
Arguments are moto.server's (`python -m local_run.moto_launcher -H 127.0.0.1 -p <port>`).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import moto

EXPECTED_MOTO = "5.2.5"
if moto.__version__ != EXPECTED_MOTO:  # the patched internals below are version-specific
    sys.exit(
        f"moto_launcher: moto {moto.__version__} found, {EXPECTED_MOTO} expected (pin it in tools/requirements.txt)"
    )

from moto.awslambda import models as lambda_models  # noqa: E402
from moto.awslambda.exceptions import LambdaClientError  # noqa: E402
from moto.core.exceptions import JsonRESTError  # noqa: E402
from moto.core.responses import ActionResult  # noqa: E402
from moto.dynamodb import models as dynamodb_models  # noqa: E402
from moto.dynamodb.models.table import Table as DynamoTable  # noqa: E402
from moto.dynamodb.responses import DynamoHandler  # noqa: E402
from moto.iam.models import get_account_id_from  # noqa: E402
from moto.kinesis import models as kinesis_models  # noqa: E402
from moto.kinesis import responses as kinesis_responses  # noqa: E402
from moto.s3 import models as s3_models  # noqa: E402
from moto.s3.exceptions import S3ClientError  # noqa: E402
from moto.sts import models as sts_models  # noqa: E402
from moto.sts import responses as sts_responses  # noqa: E402
from moto.sts.exceptions import STSClientError  # noqa: E402

from local_run.faults import SHORT_CREDENTIALS_S, FaultInjector  # noqa: E402


def _sync_payload_limit() -> int:
    value = os.environ.get("LOCAL_SYNC_PAYLOAD_LIMIT", "")
    if not value.isdigit():
        sys.exit(f"moto_launcher: LOCAL_SYNC_PAYLOAD_LIMIT={value!r} is not a number of bytes (the harness sets it)")
    return int(value)


# Lambda's limit on a synchronous request payload: a request must be smaller.
SYNC_PAYLOAD_LIMIT = _sync_payload_limit()

_audit_lock = threading.Lock()
_CREDENTIAL_RE = re.compile(r"Credential=([A-Z0-9]+)/")


def _routes() -> dict[str, str]:
    return json.loads(os.environ.get("LOCAL_LAMBDA_ROUTES", "{}"))


def _trust_rules() -> dict[str, dict[str, str]]:
    return json.loads(os.environ.get("LOCAL_TRUST_RULES", "{}"))


def audit(event: Mapping[str, Any]) -> None:
    path = os.environ.get("LOCAL_AUDIT_LOG")
    if not path:
        return
    event = {"time": time.time(), **event}
    line = json.dumps(event, sort_keys=True) + "\n"
    with _audit_lock, open(path, "a", encoding="utf-8") as f:
        f.write(line)


def caller_access_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("Authorization") or headers.get("authorization") or ""
    match = _CREDENTIAL_RE.search(auth)
    return match.group(1) if match else None


class Throttled(LambdaClientError):
    code = 429

    def __init__(self) -> None:
        super().__init__("TooManyRequestsException", "Rate exceeded (fault injected by the soak)")


class RequestTooLarge(LambdaClientError):
    code = 413

    def __init__(self, size: int) -> None:
        super().__init__(
            "RequestEntityTooLargeException",
            f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the InvokeFunction operation (got {size})",
        )


def invoke_through_runtime_emulator(
    self: lambda_models.LambdaFunction,
    body: str | bytes | None,
    request_headers: Mapping[str, str],
    response_headers: dict[str, str],
) -> bytes:
    """Replacement for moto's LambdaFunction.invoke (moto 5.2.5)."""
    if isinstance(body, str):
        payload = body.encode("utf-8")
    elif body is None:
        payload = b""
    else:
        payload = bytes(body)
    if not payload:
        payload = b"{}"
    key = caller_access_key(request_headers)
    entry = {
        "event": "invoke",
        "function_arn": self.function_arn,
        "function_account": self.account_id,
        "caller_access_key": key,
        "caller_account": get_account_id_from(key) if key else None,
        "request_bytes": len(payload),
    }
    if _fault("target_throttle"):
        audit({**entry, "outcome": "throttled"})
        raise Throttled()
    if len(payload) >= SYNC_PAYLOAD_LIMIT:  # Lambda: "must be smaller than"
        audit({**entry, "outcome": "request_too_large"})
        raise RequestTooLarge(len(payload))
    url = _routes().get(self.function_arn)
    if url is None:
        audit({**entry, "outcome": "no_route"})
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(
            {"errorType": "Local.NoRuntime", "errorMessage": f"no local runtime hosts {self.function_arn}"}
        ).encode()
    request = urllib.request.Request(
        f"{url}/2015-03-31/functions/{self.function_name}/invocations",
        data=payload,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=900) as response:
            result = response.read()
            function_error = response.headers.get("X-Amz-Function-Error")
    except urllib.error.HTTPError as err:  # the emulator refused (413) or broke: a service error
        audit({**entry, "outcome": f"http_{err.code}"})
        raise LambdaClientError(
            "ServiceException", f"local runtime emulator answered {err.code}: {err.read()[:200]!r}"
        ) from err
    if function_error:
        response_headers["x-amz-function-error"] = function_error
    response_headers["x-amz-executed-version"] = "$LATEST"
    audit({**entry, "outcome": "function_error" if function_error else "ok", "response_bytes": len(result)})
    return result


_original_assume_role = sts_responses.TokenResponse.assume_role


def audited_assume_role(self: sts_responses.TokenResponse) -> ActionResult:
    role_arn = self._get_param("RoleArn")
    external_id = self._get_param("ExternalId")
    session = self._get_param("RoleSessionName")
    key = caller_access_key(self.headers)
    caller_account = get_account_id_from(key) if key else None
    entry = {
        "event": "assume_role",
        "role_arn": role_arn,
        "session_name": session,
        "caller_access_key": key,
        "caller_account": caller_account,
        "external_id_given": bool(external_id),
    }
    # STS faults hit the cross-account role only (the harness assumes the execution roles too).
    faulty = role_arn in _trust_rules()
    if faulty and _fault("sts_throttle"):
        audit({**entry, "outcome": "throttled"})
        raise STSClientError("Throttling", "Rate exceeded (fault injected by the soak)")
    if faulty and _fault("sts_deny"):
        audit({**entry, "outcome": "denied_by_fault"})
        raise STSClientError("AccessDenied", f"not authorized to perform sts:AssumeRole on {role_arn} (fault injected)")
    rule = _trust_rules().get(role_arn)
    if rule is not None:
        if rule.get("principal_account") and caller_account != rule["principal_account"]:
            audit({**entry, "outcome": "denied_principal"})
            raise STSClientError("AccessDenied", f"account {caller_account} may not assume {role_arn}")
        if rule.get("external_id") and external_id != rule["external_id"]:
            audit({**entry, "outcome": "denied_external_id"})
            raise STSClientError("AccessDenied", f"sts:ExternalId does not match the trust policy of {role_arn}")
    result = _original_assume_role(self)
    audit({**entry, "outcome": "ok"})
    return result


# ---- the soak's faults (local_run.faults): injected only when LOCAL_FAULTS is set ----
_faults: FaultInjector | None = None


def _fault(name: str) -> bool:
    if _faults is None or not _faults.fire(name):
        return False
    audit({"event": "fault", "class": name})
    return True


_original_put_record = kinesis_models.KinesisBackend.put_record
_original_get_records = kinesis_models.KinesisBackend.get_records
# moto 5.2.5's shard keeps its records in an OrderedDict that GetRecords iterates while a
# PutRecords appends to it ("OrderedDict mutated during iteration": HTTP 500, found by the soak
# under concurrent polling), and numbers records as the highest number + 1: one lock serialises
# the reads and writes of every stream. Its GetRecords scans the shard from its first record and
# PutRecords copies the shard's keys to find the highest: time growing with the shard, which
# made a 100,000-record soak slow down as it went; the shard_* replacements look them up.
_kinesis_lock = threading.Lock()
_original_sts_assume_role = sts_models.STSBackend.assume_role
_original_put_object = s3_models.S3Backend.put_object


# Kinesis: a stream's maximum record size and a PutRecords call's, in bytes ("Each record in the
# request can be as large as 10 MiB, up to a limit of 10 MiB for the entire request").
MAX_RECORD_SIZE_KIB = range(1024, 10240 + 1)
DEFAULT_MAX_RECORD_SIZE_KIB = 1024
MAX_BYTES_PER_PUT_RECORDS = 10 * 1024 * 1024
_original_create_stream = kinesis_responses.KinesisResponse.create_stream
_original_summary = kinesis_models.Stream.to_json_summary


def _validation(message: str) -> JsonRESTError:
    return JsonRESTError("ValidationException", f"1 validation error detected: {message}")


def create_stream_sized(self: kinesis_responses.KinesisResponse) -> ActionResult:
    """CreateStream, keeping MaxRecordSizeInKiB on the stream (moto drops it)."""
    size = self._get_param("MaxRecordSizeInKiB")
    if size is not None and int(size) not in MAX_RECORD_SIZE_KIB:
        raise _validation(
            f"Value '{size}' at 'maxRecordSizeInKiB' failed to satisfy constraint: "
            f"Member must have value between {MAX_RECORD_SIZE_KIB.start} and {MAX_RECORD_SIZE_KIB.stop - 1}"
        )
    result = _original_create_stream(self)
    stream = self.kinesis_backend.describe_stream(None, self._get_param("StreamName"))
    # moto's Stream has no such field: kept as an attribute of its own, read by _max_record_size_kib.
    stream.max_record_size_kib = int(size) if size is not None else DEFAULT_MAX_RECORD_SIZE_KIB  # type: ignore[attr-defined]
    return result


def summary_with_record_size(self: kinesis_models.Stream) -> dict[str, Any]:
    summary = _original_summary(self)
    summary["StreamDescriptionSummary"]["MaxRecordSizeInKiB"] = _max_record_size_kib(self)
    return summary


def _max_record_size_kib(stream: kinesis_models.Stream) -> int:
    return int(getattr(stream, "max_record_size_kib", DEFAULT_MAX_RECORD_SIZE_KIB))


def _check_record_size(stream: kinesis_models.Stream, position: int, data: str, partition_key: str) -> int:
    """The record's size as Kinesis counts it (data and partition key); refused over the stream's maximum."""
    size = len(base64.b64decode(data or "")) + len((partition_key or "").encode())
    limit = _max_record_size_kib(stream) * 1024
    if size > limit:
        raise _validation(
            f"Value at 'records.{position}.member.data' failed to satisfy constraint: "
            f"Member must have length less than or equal to {limit} (the stream's maximum record size)"
        )
    return size


def put_records_sized(
    self: kinesis_models.KinesisBackend, stream_arn: str, stream_name: str, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """moto's PutRecords with Kinesis's size rules of today: each record within the stream's own
    maximum, the call within 10 MiB (moto checks 1 MiB and 5 MiB)."""
    stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
    if len(records) > 500:
        raise kinesis_models.TooManyRecords
    sizes = [
        _check_record_size(stream, n, r.get("Data", ""), r.get("PartitionKey", "")) for n, r in enumerate(records, 1)
    ]
    if sum(sizes) > MAX_BYTES_PER_PUT_RECORDS:
        raise JsonRESTError("InvalidArgumentException", "Records size exceeds 10 MB limit")
    response: dict[str, Any] = {"FailedRecordCount": 0, "Records": []}
    for record in records:
        sequence_number, shard_id = stream.put_record(
            record["PartitionKey"],
            record.get("ExplicitHashKey"),  # type: ignore[arg-type]  # moto's own call passes it so
            record["Data"],
        )
        response["Records"].append({"SequenceNumber": sequence_number, "ShardId": shard_id})
    self._send_stream_metrics(stream.stream_name, incoming_bytes=sum(sizes), incoming_records=len(records))
    return response


def put_records_partly_refused(
    self: kinesis_models.KinesisBackend, stream_arn: str, stream_name: str, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """PutRecords with some entries refused as Kinesis refuses them under load; the others are written."""
    if _faults is None:  # the size checks (500 records, 10 MiB, the stream's maximum) on the whole call
        with _kinesis_lock:
            return put_records_sized(self, stream_arn, stream_name, records)
    refused = [_fault("kinesis_put_refused") for _ in records]
    accepted = [r for r, no in zip(records, refused, strict=True) if not no]
    with _kinesis_lock:
        written = iter(put_records_sized(self, stream_arn, stream_name, accepted)["Records"] if accepted else [])
    entries = [
        {
            "ErrorCode": "ProvisionedThroughputExceededException",
            "ErrorMessage": "Rate exceeded for shard (fault injected by the soak)",
        }
        if no
        else next(written)
        for no in refused
    ]
    return {"FailedRecordCount": sum(refused), "Records": entries}


def get_records_failing(self: kinesis_models.KinesisBackend, *args: Any, **kwargs: Any) -> Any:
    if _fault("kinesis_get_failed"):
        raise JsonRESTError(
            "ProvisionedThroughputExceededException", "Rate exceeded for shard (fault injected by the soak)"
        )
    with _kinesis_lock:
        return _original_get_records(self, *args, **kwargs)


def shard_max_sequence_number(self: kinesis_models.Shard) -> int:
    return next(reversed(self.records)) if self.records else 0


def shard_min_sequence_number(self: kinesis_models.Shard) -> int:
    return next(iter(self.records)) if self.records else 0


def shard_get_records(
    self: kinesis_models.Shard, last_sequence_id: str, limit: int | None
) -> tuple[list[kinesis_models.Record], int, int]:
    """moto's Shard.get_records without the scan from the shard's first record: sequence numbers
    are consecutive integers (put_record numbers highest + 1), so the next ones are looked up."""
    last = int(last_sequence_id)
    if not self.records:
        return [], last, 0
    top = next(reversed(self.records))
    start = max(last + 1, next(iter(self.records)))
    stop = top if limit is None else min(top, start + limit - 1)
    results = [self.records[n] for n in range(start, stop + 1) if n in self.records]
    if not results:
        return [], last, 0
    behind_ms = int((self.records[top].created_at - results[-1].created_at) * 1000)
    return results, results[-1].sequence_number, behind_ms


def put_record_serialised(
    self: kinesis_models.KinesisBackend,
    stream_arn: str,
    stream_name: str,
    partition_key: str,
    explicit_hash_key: str,
    data: str,
) -> Any:
    with _kinesis_lock:
        stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
        _check_record_size(stream, 1, data, partition_key)
        return _original_put_record(self, stream_arn, stream_name, partition_key, explicit_hash_key, data)


def assume_role_short_lived(self: sts_models.STSBackend, **kwargs: Any) -> Any:
    if kwargs.get("role_arn") in _trust_rules() and _fault("sts_short_credentials"):
        kwargs["duration"] = SHORT_CREDENTIALS_S
    return _original_sts_assume_role(self, **kwargs)


def put_object_refused(self: s3_models.S3Backend, *args: Any, **kwargs: Any) -> Any:
    # Only the data path writes S3 here: the relay's dead letters and the mapping's on-failure
    # records, both to the dead-letter bucket.
    if _fault("dead_letter_refused"):
        raise S3ClientError("SlowDown", "PutObject refused (fault injected by the soak)")
    return _original_put_object(self, *args, **kwargs)


# moto 5.2.5's DynamoDB is not thread-safe: TransactWriteItems deep-copies each table it writes
# (for its rollback) while another request's thread writes to it ("dictionary changed size during
# iteration": HTTP 500, found by the idempotency store's benchmark, whose chunks of 100 actions go
# concurrently). One lock serialises every DynamoDB request (each is atomic in DynamoDB too).
# And the copy is of the whole table, once per action: a transaction's cost grew with the table
# (measured: 31 ms for 100 claims in an empty table, 195 ms at 20,000 items, so seconds per
# delivery in the 100,000-record soak, whose idempotency table ends with 100,000 items). A
# transaction here keeps instead an undo log of the items it names (their state before it) and
# puts them back when it is cancelled: what DynamoDB guarantees (all or nothing), at the cost of
# the items it touches.
_dynamodb_lock = threading.Lock()
_original_dynamodb_call_action = DynamoHandler.call_action
_original_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items


def dynamodb_call_serialised(self: DynamoHandler) -> Any:
    with _dynamodb_lock:
        return _original_dynamodb_call_action(self)


class TablesNotCopied:
    """`copy` as moto's transaction sees it: a table is not copied (moto's rollback then puts the
    same table back, a no-op; `ItemUndoLog` undoes the writes), every other object is copied as
    usual."""

    @staticmethod
    def deepcopy(obj: Any) -> Any:
        return obj if isinstance(obj, DynamoTable) else copy.deepcopy(obj)


class ItemUndoLog:
    """The state, before a transaction, of each item its actions name, to put back when the
    transaction fails."""

    def __init__(self, backend: dynamodb_models.DynamoDBBackend, transact_items: Any) -> None:
        self.backend = backend
        self.before: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for action in transact_items if isinstance(transact_items, list) else []:
            try:
                _, op = next(iter(action.items()))
                table = backend.get_table(op["TableName"])
                key = op["Key"] if "Key" in op else {a: op["Item"][a] for a in table_key_attributes(table)}
                current = backend.get_item(op["TableName"], key)
            except Exception:  # moto refuses this action itself, before writing it
                continue
            self.before.append(
                (op["TableName"], key, copy.deepcopy(current.to_json()["Attributes"]) if current else None)
            )

    def undo(self) -> None:
        for table_name, key, attributes in reversed(self.before):
            if attributes is None:
                if self.backend.get_item(table_name, key) is not None:
                    self.backend.delete_item(table_name, key)
            else:
                self.backend.put_item(table_name, attributes)


def table_key_attributes(table: DynamoTable) -> list[str]:
    return [a for a in (table.hash_key_attr, table.range_key_attr) if a is not None]


def transact_write_items_undoing_items(self: dynamodb_models.DynamoDBBackend, transact_items: Any) -> Any:
    # Runs under _dynamodb_lock (every DynamoDB request does): no other thread sees the swap, or
    # the items between a write and its undo.
    undo = ItemUndoLog(self, transact_items)
    dynamodb_models.copy = TablesNotCopied()  # type: ignore[assignment]
    try:
        return _original_transact_write_items(self, transact_items)
    except Exception:
        undo.undo()
        raise
    finally:
        dynamodb_models.copy = copy


def install() -> None:
    global _faults
    lambda_models.LambdaFunction.invoke = invoke_through_runtime_emulator  # type: ignore[method-assign]
    sts_responses.TokenResponse.assume_role = audited_assume_role  # type: ignore[method-assign]
    # Serialised Kinesis reads and writes (see _kinesis_lock); faults only with a fault matrix.
    kinesis_models.KinesisBackend.put_records = put_records_partly_refused  # type: ignore[method-assign]
    kinesis_models.KinesisBackend.put_record = put_record_serialised  # type: ignore[method-assign]
    kinesis_responses.KinesisResponse.create_stream = create_stream_sized  # type: ignore[method-assign]
    kinesis_models.Stream.to_json_summary = summary_with_record_size  # type: ignore[method-assign]
    kinesis_models.KinesisBackend.get_records = get_records_failing  # type: ignore[method-assign]
    kinesis_models.Shard.get_records = shard_get_records  # type: ignore[method-assign]
    kinesis_models.Shard.get_max_sequence_number = shard_max_sequence_number  # type: ignore[method-assign]
    kinesis_models.Shard.get_min_sequence_number = shard_min_sequence_number  # type: ignore[method-assign]
    # Serialised DynamoDB requests, transactions undone item by item (see _dynamodb_lock).
    DynamoHandler.call_action = dynamodb_call_serialised  # type: ignore[method-assign]
    dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items_undoing_items  # type: ignore[method-assign]
    matrix = os.environ.get("LOCAL_FAULTS")
    if matrix:
        _faults = FaultInjector.from_json(matrix)
        sts_models.STSBackend.assume_role = assume_role_short_lived  # type: ignore[method-assign,assignment]
        s3_models.S3Backend.put_object = put_object_refused  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    install()
    from moto import server

    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
