"""The stream as an operator of the source account uses it: records written straight in (the
tests' own records, beside the producer's), and a range of it read back (what an on-failure
record of the event source mapping points at)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from local.environment import Stream
from local.limits import Limits

# Kinesis maps hash key 0 to the first shard: records a test wants in one batch go there.
FIRST_SHARD_HASH_KEY = "0"


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
            if entry_size > limits.kinesis_max_record_bytes:
                raise ValueError(f"record {pk} has {entry_size} bytes; Kinesis takes {limits.kinesis_max_record_bytes}")
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
            if not entries:
                continue
            resp = self._kinesis.put_records(StreamName=self.stream.name, Records=entries)
            if resp.get("FailedRecordCount"):
                raise RuntimeError(f"PutRecords refused {resp['FailedRecordCount']} entries")
            sequence_numbers.extend(r["SequenceNumber"] for r in resp["Records"])
        return sequence_numbers

    def partition_keys_between(self, shard_id: str, start: str, end: str) -> list[str]:
        """Partition keys of the records of `shard_id` from sequence number `start` to `end`,
        read as an operator would replay them."""
        iterator = self._kinesis.get_shard_iterator(
            StreamName=self.stream.name,
            ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=start,
        )["ShardIterator"]
        last = int(end)
        keys: list[str] = []
        while iterator:
            resp = self._kinesis.get_records(ShardIterator=iterator, Limit=1000)
            for r in resp["Records"]:
                if int(r["SequenceNumber"]) > last:
                    return keys
                keys.append(r["PartitionKey"])
            iterator = resp["NextShardIterator"] if resp["Records"] else None
        return keys
