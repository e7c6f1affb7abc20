"""The records the soak writes itself, straight into the stream: records that share partition
keys (so the order per key means something) and the records that carry the record-level faults
(`local_run.faults`: malformed, rejected by the target, a function error, a retry, a kill after
the record's effect)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from local_run.envelope import produced_record
from local_run.faults import FaultInjector

NEAR_1_MIB = 1024 * 1024 - 4096  # a near-1 MiB record: data plus partition key under Kinesis's 1 MiB
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
    key_of: dict[str, str] = field(default_factory=dict)  # record id -> partition key, when they differ
    marked: dict[str, list[str]] = field(default_factory=dict)  # fault class -> ids of the records it marked
    written: int = 0

    def batch(self, count: int) -> list[tuple[str, bytes]]:
        """`count` records as (partition key, data)."""
        return [self._one() for _ in range(count)]

    def _mark(self, fault: str, record_id: str) -> None:
        self.marked.setdefault(fault, []).append(record_id)

    def _one(self) -> tuple[str, bytes]:
        self.written += 1
        fire = self.injector.fire
        if fire("malformed"):
            pk = f"malformed-{uuid.uuid4()}"  # the target names a record it cannot read by its key
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
        rid, data = produced_record(simulate=simulate, sequence=self.written, producer="soak")
        if simulate:
            self._mark(MARKS[next(iter(simulate))], rid)
        key = f"key-{self.injector.choose(self.keys)}"
        self.key_of[rid] = key
        return key, data
