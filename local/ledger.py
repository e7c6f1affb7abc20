"""The ledger that proves nothing was lost: record ids produced against what the target logged
as processed and what reached the dead-letter queue, and the RESULT line of `make demo`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from local.containers import FunctionPool
from local.envelope import DeadLetterKind
from local.runtime_api import FunctionHost
from local.stream import StreamOperator


@dataclass(frozen=True)
class Accounting:
    """What happened to a set of produced record ids."""

    produced: int
    delivered: int  # distinct ids the target answered ok
    rejected: int  # dead-lettered by the relay because the target rejected them
    dead_lettered: int  # in the dead-letter queue, for any reason, and never delivered
    on_failure_batches: int  # the event source mapping's on-failure records holding any of them
    lost: int
    unaccounted_ids: list[str]  # neither delivered nor dead-lettered
    delivered_and_dead_lettered: list[str]
    duplicate_produced_ids: int
    unknown_dead_letters: int
    p50_ms: float | None  # end-to-end latency the target logged
    p99_ms: float | None


class Ledger:
    def __init__(self, target: FunctionHost | FunctionPool, stream: StreamOperator) -> None:
        self._target = target
        self._stream = stream
        self._lock = threading.Lock()
        self._produced: list[str] = []
        self._dead_letters: list[dict[str, Any]] = []
        self._range_cache: dict[tuple[str, str, str], list[str]] = {}
        self.producer_errors: list[str] = []

    def add_produced(self, ids: Iterable[str]) -> None:
        with self._lock:
            self._produced.extend(ids)

    def add_dead_letter(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._dead_letters.append(message)

    def produced(self) -> list[str]:
        with self._lock:
            return list(self._produced)

    def dead_letters(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._dead_letters)

    def target_lines(self) -> list[dict[str, Any]]:
        """The target's `record processed` log lines, as a Logs Insights query would find them."""
        return [e for e in list(self._target.logs) if e.get("message") == "record processed"]

    def ids_in_range(self, batch_info: dict[str, Any]) -> list[str]:
        """Record ids an on-failure record's `KinesisBatchInfo` points at (see
        `StreamOperator.record_ids_between`), read
        back from the stream as an operator would: startSequenceNumber to endSequenceNumber."""
        key = (batch_info["shardId"], batch_info["startSequenceNumber"], batch_info["endSequenceNumber"])
        if key not in self._range_cache:
            self._range_cache[key] = self._stream.record_ids_between(*key)
        return self._range_cache[key]

    def account(self, ids: Sequence[str] | None = None) -> Accounting:
        """The RESULT numbers for `ids` (default: everything produced in this run)."""
        with self._lock:
            produced = list(self._produced if ids is None else ids)
            letters = list(self._dead_letters)
        wanted = set(produced)
        ok_latency: dict[str, Any] = {}
        for line in self.target_lines():
            rid = line.get("record_id")
            if line.get("outcome") == "ok" and rid in wanted and rid not in ok_latency:
                ok_latency[rid] = line.get("latency_ms")
        # Sets, not sums: the same record can reach the queue twice (a retried batch rejected
        # again, SQS at-least-once) and an on-failure range can hold records delivered earlier.
        delivered_ids = set(ok_latency)
        rejected_ids: set[str] = set()
        undeliverable_ids: set[str] = set()
        on_failure_ids: set[str] = set()
        on_failure_batches, other_letters = 0, 0
        for m in letters:
            kind, record_id = m.get("kind"), m.get("partition_key")
            if kind == DeadLetterKind.REJECTED_BY_TARGET:
                if record_id in wanted:
                    rejected_ids.add(record_id)
            elif kind == DeadLetterKind.UNDELIVERABLE:
                if record_id in wanted:
                    undeliverable_ids.add(record_id)
            elif "KinesisBatchInfo" in m:
                batch = wanted.intersection(self.ids_in_range(m["KinesisBatchInfo"]))
                if batch:
                    on_failure_batches += 1
                    on_failure_ids |= batch
            else:
                other_letters += 1
        dead_ids = (rejected_ids | undeliverable_ids | on_failure_ids) - delivered_ids
        latencies = sorted(float(v) for v in ok_latency.values() if isinstance(v, int | float))
        return Accounting(
            produced=len(wanted),
            delivered=len(delivered_ids),
            rejected=len(rejected_ids - delivered_ids),
            dead_lettered=len(dead_ids),
            on_failure_batches=on_failure_batches,
            lost=len(wanted) - len(delivered_ids) - len(dead_ids),
            unaccounted_ids=sorted(wanted - delivered_ids - dead_ids),
            delivered_and_dead_lettered=sorted(delivered_ids & (rejected_ids | undeliverable_ids | on_failure_ids)),
            duplicate_produced_ids=len(produced) - len(wanted),
            unknown_dead_letters=other_letters,
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
        )

    def settled(self, ids: Sequence[str] | None = None) -> bool:
        """Every id is delivered or dead-lettered."""
        return not self.account(ids).unaccounted_ids


class DeadLetterCollector:
    """Drains the dead-letter queue into the ledger (long polls, one thread)."""

    def __init__(self, sqs: Any, queue_url: str, ledger: Ledger) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._ledger = ledger
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dlq", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                resp = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            except Exception:  # moto going away at shutdown
                if self._stop.is_set():
                    return
                time.sleep(0.2)
                continue
            for m in resp.get("Messages", []):
                try:
                    letter = json.loads(m["Body"])
                except ValueError:  # counted as an unknown dead letter, never dropped
                    letter = {"unparseable_body": m["Body"][:500]}
                self._ledger.add_dead_letter(letter if isinstance(letter, dict) else {"body": letter})
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=m["ReceiptHandle"])


def percentile(values: Sequence[float], p: int) -> float | None:
    """Nearest-rank percentile of sorted `values`, rounded to 0.1."""
    if not values:
        return None
    rank = max(1, -(-p * len(values) // 100))
    return round(values[rank - 1], 1)


def result_line(acc: Accounting, assume_role_calls: int) -> str:
    def ms(value: float | None) -> str:
        return "na" if value is None else f"{value:.1f}"

    return (
        f"RESULT produced={acc.produced} delivered={acc.delivered} rejected={acc.rejected} "
        f"dead_lettered={acc.dead_lettered} lost={acc.lost} assume_role_calls={assume_role_calls} "
        f"p50_ms={ms(acc.p50_ms)} p99_ms={ms(acc.p99_ms)}"
    )
