"""The stream as an operator of the source account uses it: records written straight in (the
tests' own records, beside the producer's), and a range of it read back (what an on-failure
record of the event source mapping points at)."""

from __future__ import annotations

import base64
import functools
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aws_kinesis_agg import MAGIC as KPL_MAGIC
from aws_kinesis_agg.deaggregator import deaggregate_records

from local_run.environment import Stream
from local_run.limits import Limits

# Kinesis maps hash key 0 to the first shard: records a test wants in one batch go there.
FIRST_SHARD_HASH_KEY = "0"
# Refused PutRecords entries and failed GetRecords calls (throughput exceeded: `make soak`
# injects both) are tried again this many times, with a short back-off.
ATTEMPTS = 10

T = TypeVar("T")


def _retrying(call: Callable[[], T]) -> T:
    for attempt in range(ATTEMPTS - 1):
        try:
            return call()
        except Exception as error:  # botocore's ClientError; anything else fails on the last try
            if "ProvisionedThroughputExceeded" not in str(error):
                raise
            time.sleep(0.05 * (attempt + 1))
    return call()


def record_id(partition_key: str, data: bytes) -> str:
    """The id the target gives a record: a produced record's `id`, else its partition key."""
    try:
        document = json.loads(data)
    except ValueError:
        return partition_key
    rid = document.get("id") if isinstance(document, dict) else None
    return rid if isinstance(rid, str) and rid else partition_key


def record_ids(partition_key: str, data: bytes) -> list[str]:
    """The ids (`record_id`) of the records one Kinesis record holds: a KPL aggregate's user
    records, read by the independent `aws-kinesis-agg` (which, like the relay, takes a record
    whose MD5 does not match for a plain one), else the record itself."""
    if not data.startswith(KPL_MAGIC):
        return [record_id(partition_key, data)]
    kinesis = {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": partition_key,
        "sequenceNumber": "0",
        "data": base64.b64encode(data).decode(),
        "approximateArrivalTimestamp": 0.0,
    }
    users = [r["kinesis"] for r in deaggregate_records([{"kinesis": kinesis}])]
    return [record_id(u["partitionKey"], base64.b64decode(u["data"])) for u in users]


class StreamOperator:
    def __init__(self, kinesis: Any, stream: Stream, limits: Limits) -> None:
        self._kinesis = kinesis  # one client, shared: boto3 clients are thread-safe
        self.stream = stream
        self._limits = limits

    def put_records(self, records: Sequence[tuple[str, bytes]], explicit_hash_key: str | None = None) -> list[str]:
        """Writes (partition key, data) records in order, in as few PutRecords calls as the
        limits allow, and returns their sequence numbers (`explicit_hash_key` puts them all on
        one shard)."""
        limits = self._limits
        calls: list[list[dict[str, Any]]] = [[]]
        size = 0
        for pk, data in records:
            entry_size = len(data) + len(pk.encode())  # PutRecords counts the partition keys too
            if entry_size > self.stream.max_record_bytes:
                raise ValueError(
                    f"record {pk} has {entry_size} bytes; the stream takes {self.stream.max_record_bytes} "
                    "(its maximum record size, streamMaxRecordSizeKib)"
                )
            current = calls[-1]
            if current and (
                len(current) == limits.kinesis_max_records_per_put
                or size + entry_size > limits.kinesis_max_bytes_per_put
            ):
                current = []
                calls.append(current)
                size = 0
            entry: dict[str, Any] = {"PartitionKey": pk, "Data": data}
            if explicit_hash_key is not None:
                entry["ExplicitHashKey"] = explicit_hash_key
            current.append(entry)
            size += entry_size
        sequence_numbers: list[str] = []
        for entries in calls:
            if entries:
                sequence_numbers.extend(self._put_all(entries))
        return sequence_numbers

    def _put_all(self, entries: list[dict[str, Any]]) -> list[str]:
        """One PutRecords call, and again for the entries it refused (PutRecords is not atomic)."""
        numbers: list[str | None] = [None] * len(entries)
        pending = list(range(len(entries)))
        for attempt in range(ATTEMPTS):
            resp = self._kinesis.put_records(StreamName=self.stream.name, Records=[entries[i] for i in pending])
            refused = []
            for i, result in zip(pending, resp["Records"], strict=True):
                if "SequenceNumber" in result:
                    numbers[i] = result["SequenceNumber"]
                else:
                    refused.append(i)
            pending = refused
            if not pending:
                return [n for n in numbers if n is not None]
            time.sleep(0.05 * (attempt + 1))
        keys = ", ".join(entries[i]["PartitionKey"] for i in pending[:5])
        raise RuntimeError(f"PutRecords refused {len(pending)} entries {ATTEMPTS} times (first: {keys})")

    def record_ids_between(self, shard_id: str, start: str, end: str) -> list[str]:
        """Record ids (`record_ids`: an aggregate's user records each) of the records of `shard_id`
        from sequence number `start` to `end`, read as an operator would replay them."""
        return [rid for pk, data in self._records_between(shard_id, start, end) for rid in record_ids(pk, data)]

    def _records_between(self, shard_id: str, start: str, end: str) -> list[tuple[str, bytes]]:
        iterator = self._kinesis.get_shard_iterator(
            StreamName=self.stream.name,
            ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=start,
        )["ShardIterator"]
        last = int(end)
        records: list[tuple[str, bytes]] = []
        while iterator:
            resp = _retrying(functools.partial(self._kinesis.get_records, ShardIterator=iterator, Limit=1000))
            for r in resp["Records"]:
                if int(r["SequenceNumber"]) > last:
                    return records
                records.append((r["PartitionKey"], r["Data"]))
            iterator = resp["NextShardIterator"] if resp["Records"] else None
        return records
