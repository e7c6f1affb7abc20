"""The records the soak writes itself, straight into the stream: records that share partition
keys (so the order per key means something) and the records that carry the record-level faults
(`local_run.faults`: malformed, rejected by the target, a function error, a retry, a kill after
the record's effect)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aws_kinesis_agg.aggregator import AggRecord

from local_run.envelope import produced_record, produced_record_of_size
from local_run.faults import FaultInjector

NEAR_1_MIB = 1024 * 1024 - 4096  # a near-1 MiB record: data plus partition key under Kinesis's 1 MiB
# Records the writer decides on together whether to aggregate (`Writer.aggregated`): at most one
# KPL aggregate's user records.
AGGREGATE_RECORDS = 10
# The Kinesis partition key of every aggregate the writer writes. The mapping's lanes go by the
# Kinesis record's partition key, so one key for all aggregates keeps them in one lane, in order;
# their user records have keys of their own (`aggregated-key-N`, never written plain), so each user
# key's records reach the target in the order written. (An aggregate keyed by its first user
# record, the KPL's way, would put one user key's records in several lanes.)
AGGREGATE_PARTITION_KEY = "soak-aggregates"
# The partition key of a malformed record starts so (the target names such a record by its key).
MALFORMED_PREFIX = "malformed-"
# The fault class of each `body.simulate` field the writer sets.
MARKS = {
    "function_error": "target_function_error",
    "retry_times": "target_retry",
    "kill_after_effect": "handler_killed_after_effect",
}


@dataclass
class Writer:
    """Writes the soak's own records, marking some with the record-level faults."""

    injector: FaultInjector
    keys: int
    aggregated: float = 0.0  # the share of the records written as user records of KPL aggregates
    # The share of the plain records written large: each of a size drawn from `large_sizes`
    # (bytes, data and partition key, both ends included).
    large: float = 0.0
    large_sizes: tuple[int, int] = (0, 0)
    large_records: int = 0  # records written large
    key_of: dict[str, str] = field(default_factory=dict)  # record id -> partition key, when they differ
    marked: dict[str, list[str]] = field(default_factory=dict)  # fault class -> ids of the records it marked
    written: int = 0
    aggregates: int = 0  # KPL aggregates written
    user_records: int = 0  # records written inside them

    def batch(self, count: int) -> list[tuple[str, bytes]]:
        """`count` records as (partition key, data) Kinesis records: in runs of
        `AGGREGATE_RECORDS`, each run aggregated with the probability `aggregated` (built by the
        independent `aws-kinesis-agg`), its malformed records left plain, in their place."""
        out: list[tuple[str, bytes]] = []
        for start in range(0, count, AGGREGATE_RECORDS):
            size = min(AGGREGATE_RECORDS, count - start)
            if not (self.aggregated and self.injector.choose(1_000_000) < self.aggregated * 1_000_000):
                out.extend(self._one() for _ in range(size))
                continue
            run: list[tuple[str, bytes]] = []
            for _ in range(size):
                key, data = self._one(aggregated=True)
                if key.startswith(MALFORMED_PREFIX):
                    out.extend([self._aggregate(run)] if run else [])
                    run = []
                    out.append((key, data))
                else:
                    run.append((key, data))
            out.extend([self._aggregate(run)] if run else [])
        return out

    def _aggregate(self, records: list[tuple[str, bytes]]) -> tuple[str, bytes]:
        aggregate = AggRecord()
        for key, data in records:
            if not aggregate.add_user_record(key, data):
                raise ValueError(f"{len(records)} records do not fit one KPL aggregate")
        self.aggregates += 1
        self.user_records += len(records)
        return AGGREGATE_PARTITION_KEY, bytes(aggregate.get_contents()[2])

    def _mark(self, fault: str, record_id: str) -> None:
        self.marked.setdefault(fault, []).append(record_id)

    def _one(self, aggregated: bool = False) -> tuple[str, bytes]:
        self.written += 1
        fire = self.injector.fire
        if fire("malformed"):
            pk = f"{MALFORMED_PREFIX}{uuid.uuid4()}"  # the target names a record it cannot read by its key
            self._mark("malformed", pk)
            kind = self.injector.choose(3)
            if kind == 0:
                return pk, b"this is not JSON {"
            if kind == 1:
                return pk, json.dumps({"note": "a JSON document without the record's fields"}).encode()
            return pk, b"x" * (NEAR_1_MIB - len(pk))
        if fire("target_rejected"):
            rid, data = produced_record(message="")  # an empty message: the target rejects it
            self._mark("target_rejected", rid)
            return rid, data
        simulate: dict[str, Any] | None = None
        if fire("target_function_error"):
            simulate = {"function_error": True}
        elif fire("target_retry"):
            simulate = {"retry_times": 1 + self.injector.choose(2)}
        elif fire("handler_killed_after_effect"):
            simulate = {"kill_after_effect": True}
        key = f"{'aggregated-key' if aggregated else 'key'}-{self.injector.choose(self.keys)}"
        fields: dict[str, Any] = {"simulate": simulate, "sequence": self.written, "producer": "soak"}
        if not aggregated and self.large and self.injector.choose(1_000_000) < self.large * 1_000_000:
            low, high = self.large_sizes
            _, data = produced_record_of_size(low + self.injector.choose(high - low + 1), key, **fields)
            rid = json.loads(data)["id"]
            self.large_records += 1
        else:
            rid, data = produced_record(**fields)
        if simulate:
            self._mark(MARKS[next(iter(simulate))], rid)
        self.key_of[rid] = key
        return key, data
