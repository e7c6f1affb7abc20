"""The documents of the data path as the Python side writes them: the relay -> target envelope
(version 1), the producer's record, and the relay's dead letters.

The envelope's one definition is the Rust shared crate (`functions/shared/src/envelope.rs`);
tests/e2e/test_contract.py checks these builders against what `infra --envelope-example`
prints, so a field renamed there fails here. The stand-in functions (`local_run.fake_functions`),
the tests and the benchmark build envelopes only through this module.
"""

from __future__ import annotations

import base64
import datetime
import enum
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

ENVELOPE_VERSION = 1

JsonObject = dict[str, Any]


class Status(enum.StrEnum):
    """The target's verdict on one record (`RecordOutcome` in the shared crate)."""

    OK = "ok"
    REJECTED = "rejected"  # permanently invalid: the relay dead-letters it
    RETRY = "retry"  # not processed now: the relay reports it as a batch item failure


class DeadLetterKind(enum.StrEnum):
    """`kind` of an object the relay writes to the dead-letter bucket (`DeadLetterKind` in the
    relay crate). Lambda's own on-failure records have no `kind`, but a `KinesisBatchInfo`."""

    REJECTED_BY_TARGET = "rejected_by_target"
    UNDELIVERABLE = "undeliverable"
    TARGET_FUNCTION_ERROR = "target_function_error"  # a poison record the relay isolated


# The kinds the relay writes about one record each (all of them: a letter of another kind is unknown).
RELAY_KINDS = frozenset(DeadLetterKind)


# ---- the envelope: request ----
def relayed_record(
    *,
    sequence_number: str,
    partition_key: str,
    event_id: str,
    data: bytes,
    approximate_arrival_ms: int | None = None,
    sub_sequence_number: int | None = None,
    explicit_hash_key: str | None = None,
) -> JsonObject:
    """One Kinesis record as the relay forwards it (`RelayedRecord`): a plain record, or a user
    record of a KPL aggregate (its `sub_sequence_number` and, if set, `explicit_hash_key`)."""
    record: JsonObject = {"sequence_number": sequence_number}
    if sub_sequence_number is not None:  # optional in the contract: user records only
        record["sub_sequence_number"] = sub_sequence_number
    record["partition_key"] = partition_key
    if explicit_hash_key is not None:
        record["explicit_hash_key"] = explicit_hash_key
    record["event_id"] = event_id
    if approximate_arrival_ms is not None:  # optional in the contract, left out when unknown
        record["approximate_arrival_ms"] = approximate_arrival_ms
    record["data"] = base64.b64encode(data).decode()
    return record


def relayed_record_from_kinesis(event_record: Mapping[str, Any]) -> JsonObject:
    """What the relay makes of one record of a Kinesis event (AWS's format, see `local_run.esm`)."""
    kinesis = event_record["kinesis"]
    arrival = kinesis.get("approximateArrivalTimestamp")
    return relayed_record(
        sequence_number=kinesis["sequenceNumber"],
        partition_key=kinesis["partitionKey"],
        event_id=event_record["eventID"],
        data=base64.b64decode(kinesis["data"]),
        approximate_arrival_ms=None if arrival is None else int(float(arrival) * 1000),
    )


def delivery_request(records: Iterable[JsonObject], delivery_id: str | None = None) -> JsonObject:
    """What the relay sends the target in one invocation (`DeliveryRequest`)."""
    return {"version": ENVELOPE_VERSION, "delivery_id": delivery_id or uuid.uuid4().hex[:12], "records": list(records)}


def record_data(record: Mapping[str, Any]) -> bytes:
    """The bytes of a relayed record."""
    return base64.b64decode(record["data"])


# ---- the envelope: response ----
def record_result(
    sequence_number: str, status: Status, reason: str | None = None, *, sub_sequence_number: int | None = None
) -> JsonObject:
    """The target's verdict on one record (`RecordResult`): `rejected` and `retry` say why; a
    user record of a KPL aggregate is named by its `sub_sequence_number` too."""
    result: JsonObject = {"sequence_number": sequence_number}
    if sub_sequence_number is not None:
        result["sub_sequence_number"] = sub_sequence_number
    result["status"] = str(status)
    if status is Status.OK:
        if reason is not None:
            raise ValueError("an ok result has no reason")
        return result
    if not reason:
        raise ValueError(f"a {status} result needs a reason")
    result["reason"] = reason
    return result


def delivery_response(results: Iterable[JsonObject]) -> JsonObject:
    """What the target answers (`DeliveryResponse`)."""
    return {"version": ENVELOPE_VERSION, "results": list(results)}


# ---- the producer's record ----
def produced_record(
    record_id: str | None = None,
    *,
    message: str = "from the local run",
    sequence: int = 0,
    producer: str = "local",
    padding: str = "",
    simulate: Mapping[str, Any] | None = None,
    created_at: datetime.datetime | None = None,
) -> tuple[str, bytes]:
    """A record shaped like the producer's (what the target accepts), as (partition key, data).

    `simulate` asks a target with fault injection on for `retry_times` retries, a
    `function_error`, or `kill_after_effect` (its process aborts after the record's first effect); `padding` makes the record larger.
    """
    record_id = record_id or str(uuid.uuid4())
    body: JsonObject = {"message": message}
    if padding:
        body["padding"] = padding
    if simulate is not None:
        body["simulate"] = dict(simulate)
    created = created_at or datetime.datetime.now(datetime.UTC)
    document = {
        "id": record_id,
        "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "sequence": sequence,
        "producer": producer,
        "body": body,
    }
    return record_id, json.dumps(document).encode()


def produced_record_of_size(size: int, partition_key: str | None = None, **fields: Any) -> tuple[str, bytes]:
    """`produced_record(**fields)` padded to exactly `size` bytes as Kinesis counts a record: data
    plus the partition key (`partition_key`, default the record's id)."""
    record_id, one = produced_record(padding="p", **fields)
    key = partition_key or record_id
    padding = size - len(one) - len(key.encode()) + 1
    if padding < 1:
        raise ValueError(f"a produced record takes at least {size - padding + 1} bytes with its key, not {size}")
    _, data = produced_record(record_id, padding="p" * padding, **fields)
    return key, data


# ---- the relay's dead letter of a record the target rejected ----
def rejected_dead_letter(
    event_record: Mapping[str, Any], reason: str, *, batch_id: str, delivery_id: str
) -> JsonObject:
    """The relay's dead letter of a record the target rejected (`DeadLetter` in the relay crate):
    `event_id` is the record's correlation id, `delivery_id` the Invoke whose answer rejected it."""
    kinesis = event_record["kinesis"]
    data = base64.b64decode(kinesis["data"])
    return {
        "kind": str(DeadLetterKind.REJECTED_BY_TARGET),
        "reason": reason,
        "partition_key": kinesis["partitionKey"],
        "sequence_number": kinesis["sequenceNumber"],
        "event_id": event_record["eventID"],
        "event_source_arn": event_record["eventSourceARN"],
        "data_base64": kinesis["data"],
        "data_bytes": len(data),
        "batch_id": batch_id,
        "delivery_id": delivery_id,
    }
