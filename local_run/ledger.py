"""The ledger that proves nothing was lost: record ids produced against what the target logged
as processed and what is in the dead-letter bucket, and the RESULT line of `make demo`."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from local_run.containers import FunctionPool
from local_run.dead_letters import layout
from local_run.envelope import RELAY_KINDS, DeadLetterKind
from local_run.infra_command import infra_facts
from local_run.runtime_api import FunctionHost
from local_run.stream import StreamOperator, record_id, record_ids


@dataclass(frozen=True)
class Accounting:
    """What happened to a set of produced record ids."""

    produced: int
    delivered: int  # distinct ids the target answered ok
    rejected: int  # dead-lettered by the relay because the target rejected them
    poison: int  # dead-lettered by the relay because the target function failed on them alone
    dead_lettered: int  # in the dead-letter bucket, for any reason, and never delivered
    dead_letter_objects: int  # objects in the dead-letter bucket holding any of them
    on_failure_batches: int  # the event source mapping's on-failure records holding any of them
    lost: int
    unaccounted_ids: list[str]  # neither delivered nor dead-lettered
    delivered_and_dead_lettered: list[str]
    duplicate_produced_ids: int
    unknown_dead_letters: int
    p50_ms: float | None  # end-to-end latency the target logged
    p99_ms: float | None


@dataclass(frozen=True)
class EffectAttributes:
    """The sample's effects table attributes (`infra --sample-effects-attributes`, from
    `shared::config`): its key, how many times a record's effect ran, the delivery ids it ran
    under, and the one it ran under first."""

    key: str
    applied: str
    deliveries: str
    first_delivery: str


@dataclass(frozen=True)
class Effect:
    """One record's item in the sample's effects table."""

    applied: int  # times the record's effect ran
    deliveries: frozenset[str]  # the delivery ids it ran under
    first_delivery: str  # the one it ran under first


def read_effects(dynamodb: Any, table: str) -> dict[str, Effect]:
    """Every item of the sample's effects table (`sampleEffectsTable`), by record id, scanned
    page by page with `dynamodb` (a client with the target account's credentials). An item
    without a numeric count or a first delivery is an error naming it: the sample writes both
    in its one UpdateItem, so such an item was not written by the sample."""
    names = infra_facts("--sample-effects-attributes", EffectAttributes, str)
    effects: dict[str, Effect] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            try:
                rid = item[names.key]["S"]
                effects[rid] = Effect(
                    applied=int(item[names.applied]["N"]),
                    deliveries=frozenset(item.get(names.deliveries, {}).get("SS", [])),
                    first_delivery=item[names.first_delivery]["S"],
                )
            except (KeyError, ValueError) as err:
                raise ValueError(f"effects table {table}: item {item} lacks or garbles {err}") from err
    return effects


def letter_record_id(letter: dict[str, Any]) -> str:
    """The record id (`record_id`) of one of the relay's dead letters: read from the record's
    data it keeps (`data_base64`), so a record written under another partition key than its id
    (the soak's keyed records) is still named by its id; the partition key when the letter holds
    no readable data."""
    partition_key = str(letter.get("partition_key"))
    try:
        data = base64.b64decode(letter["data_base64"], validate=True)
    except (KeyError, TypeError, ValueError):
        return partition_key
    return record_id(partition_key, data)


def on_failure_ids(letter: dict[str, Any]) -> list[str]:
    """The record ids (`record_ids`: an aggregate's user records each) of an on-failure record: the whole event Lambda invoked the
    function with is in its `payload`, so the records are read from the object itself, not from
    the stream (which may have trimmed them)."""
    event = json.loads(letter["payload"])
    return [
        rid
        for r in event["Records"]
        for rid in record_ids(r["kinesis"]["partitionKey"], base64.b64decode(r["kinesis"]["data"]))
    ]


class Ledger:
    def __init__(self, target: FunctionHost | FunctionPool, stream: StreamOperator) -> None:
        self._target = target
        self._stream = stream
        self._lock = threading.Lock()
        self._produced: list[str] = []
        self._dead_letters: dict[str, dict[str, Any]] = {}  # object key -> its JSON
        self._letter_ids: dict[str, str] = {}  # object key -> `letter_record_id` (read once)
        self._range_cache: dict[tuple[str, str, str], list[str]] = {}
        self.producer_errors: list[str] = []

    def add_produced(self, ids: Iterable[str]) -> None:
        with self._lock:
            self._produced.extend(ids)

    def set_dead_letters(self, objects: dict[str, dict[str, Any]]) -> None:
        """What the dead-letter bucket holds now (object key -> its JSON)."""
        with self._lock:
            self._dead_letters = dict(objects)
            for key, letter in objects.items():
                if key not in self._letter_ids and letter.get("kind") in RELAY_KINDS:
                    self._letter_ids[key] = letter_record_id(letter)

    def produced(self) -> list[str]:
        with self._lock:
            return list(self._produced)

    def dead_letters(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._dead_letters.values())

    def dead_letter_objects(self) -> dict[str, dict[str, Any]]:
        """Object key -> its JSON, as the bucket held them at the last look."""
        with self._lock:
            return dict(self._dead_letters)

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
            letters = list(self._dead_letters.items())
            letter_ids = dict(self._letter_ids)
        wanted = set(produced)
        ok_latency: dict[str, Any] = {}
        for line in self.target_lines():
            rid = line.get("record_id")
            if line.get("outcome") == "ok" and rid in wanted and rid not in ok_latency:
                ok_latency[rid] = line.get("latency_ms")
        # Sets, not sums: the same record can be in two objects (rejected once, then part of an
        # on-failure batch) and an on-failure batch can hold records delivered earlier.
        delivered_ids = set(ok_latency)
        rejected_ids: set[str] = set()
        undeliverable_ids: set[str] = set()
        poison_ids: set[str] = set()
        failed_batch_ids: set[str] = set()
        on_failure_batches, other_letters, objects = 0, 0, 0
        by_kind = {
            DeadLetterKind.REJECTED_BY_TARGET: rejected_ids,
            DeadLetterKind.UNDELIVERABLE: undeliverable_ids,
            DeadLetterKind.TARGET_FUNCTION_ERROR: poison_ids,
        }
        for key, m in letters:
            kind = m.get("kind")
            if kind in RELAY_KINDS:
                letter_id = letter_ids.get(key) or letter_record_id(m)
                if letter_id in wanted:
                    by_kind[DeadLetterKind(kind)].add(letter_id)
                    objects += 1
            elif "KinesisBatchInfo" in m and isinstance(m.get("payload"), str):
                batch = wanted.intersection(on_failure_ids(m))
                if batch:
                    on_failure_batches += 1
                    failed_batch_ids |= batch
                    objects += 1
            else:
                other_letters += 1
        relay_ids = rejected_ids | undeliverable_ids | poison_ids
        dead_ids = (relay_ids | failed_batch_ids) - delivered_ids
        latencies = sorted(float(v) for v in ok_latency.values() if isinstance(v, int | float))
        return Accounting(
            produced=len(wanted),
            delivered=len(delivered_ids),
            rejected=len(rejected_ids - delivered_ids),
            poison=len(poison_ids - delivered_ids),
            dead_lettered=len(dead_ids),
            dead_letter_objects=objects,
            on_failure_batches=on_failure_batches,
            lost=len(wanted) - len(delivered_ids) - len(dead_ids),
            unaccounted_ids=sorted(wanted - delivered_ids - dead_ids),
            delivered_and_dead_lettered=sorted(delivered_ids & (relay_ids | failed_batch_ids)),
            duplicate_produced_ids=len(produced) - len(wanted),
            unknown_dead_letters=other_letters,
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
        )

    def settled(self, ids: Sequence[str] | None = None) -> bool:
        """Every id is delivered or dead-lettered."""
        return not self.account(ids).unaccounted_ids


class DeadLetterCollector:
    """Keeps the ledger's view of the dead-letter bucket current: lists it (as an operator, with
    the source account's admin keys) a few times a second and reads each new or changed object.
    Objects a redrive moved under its `redriven/` prefix are no longer dead letters."""

    def __init__(self, s3: Any, bucket: str, ledger: Ledger, interval_s: float = 0.3) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._ledger = ledger
        self._interval_s = interval_s
        self._seen: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (ETag, JSON)
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dead-letters", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> None:
        """One look at the bucket, now."""
        with self._refresh_lock:
            current: dict[str, tuple[str, dict[str, Any]]] = {}
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket)
            for page in pages:
                for obj in page.get("Contents", []):
                    key, etag = obj["Key"], obj["ETag"]
                    if key.startswith(layout().redriven_prefix):
                        continue
                    known = self._seen.get(key)
                    current[key] = known if known and known[0] == etag else (etag, self._read(key))
            self._seen = current
            self._ledger.set_dead_letters({key: letter for key, (_, letter) in current.items()})

    def _read(self, key: str) -> dict[str, Any]:
        body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        try:
            letter = json.loads(body)
        except ValueError:  # counted as an unknown dead letter, never dropped
            return {"unparseable_body": body[:500].decode(errors="replace")}
        return letter if isinstance(letter, dict) else {"body": letter}

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.refresh()
            except Exception:  # moto going away at shutdown; the next look tries again
                if self._stop.is_set():
                    return


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
