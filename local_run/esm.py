"""The Kinesis event source mapping, played locally (moto stores mappings but never runs them).

Per shard, like Lambda's poller:
- reads from the starting position with GetRecords, gathers a batch until it holds `batch_size`
  records, or the batching window has passed since its first record, or the next record would
  take the event to the synchronous invocation payload limit (6 MB, `max_batch_bytes`); an event
  of one record at or over the limit (a stream set to take records larger than an event carries)
  is never sent to the function: the invocation fails as Lambda's Invoke refuses such a request,
  and is retried like a function error (AWS does not document what its mapping does here);
- invokes the function synchronously with real Kinesis event JSON and waits for the result;
  `parallelization_factor` (ParallelizationFactor, 1..10) batches of a shard are in flight at
  once, each from its own lane: a partition key always hashes to the same lane, so the records
  of one key are processed in order (with a factor of 1, the whole shard is in order);
- ReportBatchItemFailures: a response naming failed sequence numbers moves the checkpoint to the
  lowest of them and the batch is retried from there (an unknown or empty identifier counts as a
  failure of the whole batch, as Lambda treats it);
- a function error: with BisectBatchOnFunctionError the batch is split in two halves that are
  retried separately (a split does not consume the retry quota); otherwise retried whole;
- after MaximumRetryAttempts retries (or when a record is older than MaximumRecordAgeInSeconds),
  writes Lambda's on-failure invocation record to the on-failure destination, an S3 bucket, and
  moves on. As AWS documents it ("Retain discarded batch records for a Kinesis Data Streams
  event source"): the record holds `requestContext`, `responseContext`, `version`, `timestamp`,
  `KinesisBatchInfo` and, for an S3 destination only, `payload` (the whole event the function was
  invoked with, as a JSON string), under the key
  `aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>`.
Retries back off exponentially, with the time compressed (`retry_base_delay`).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import json
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from local_run.dead_letters import layout
from local_run.runtime_api import InvokeResult
from local_run.stream import record_ids

# The event is sent compact, so the size counted per record is the size sent.
COMPACT = (",", ":")

# (shard, [sequence numbers], event bytes, outcome) of each invocation
MappingEvent = tuple[str, list[str], int, str]


@dataclass(frozen=True, kw_only=True)
class MappingSettings:
    # Lambda's limit on a synchronous invocation payload, which bounds a batch (a batch must
    # be smaller).
    max_batch_bytes: int
    batch_size: int = 100
    batching_window_s: float = 0.0
    maximum_retry_attempts: int = -1  # -1 = until the record expires
    maximum_record_age_s: int = -1
    bisect_on_function_error: bool = False
    report_batch_item_failures: bool = False
    on_failure_bucket: str | None = None  # the S3 on-failure destination's bucket name
    starting_position: str = "TRIM_HORIZON"
    poll_interval_s: float = 0.05  # Lambda polls a shard about once per second; compressed
    # The back-off before each retry of a failed batch: base x 2^retry, at most the max. Lambda
    # backs off for seconds to minutes; compressed here, but its 10 retries (the soak's
    # maximumRetryAttempts) still span about 5.6 s, longer than any one of the soak's fault
    # windows at a rate up to 0.3 (3 s; `faults.WINDOW_PHASES`).
    retry_base_delay_s: float = 0.02
    retry_max_delay_s: float = 1.0
    parallelization_factor: int = 1  # concurrent batches per shard, each key in one lane


@dataclass
class _Lane:
    """Records of one shard whose partition keys hash to one lane, read but not yet delivered."""

    shard_id: str
    records: list[dict[str, Any]] = field(default_factory=list)
    delivering: bool = False  # a batch of this lane is being delivered
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class MappingStats:
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    bisections: int = 0
    retries: int = 0
    on_failure_batches: int = 0
    on_failure_records: int = 0
    on_failure_send_retries: int = 0
    # The record ids of each batch sent to the on-failure destination, one list a batch. Lambda's
    # on-failure record holds only a sequence-number range, which with parallelization_factor > 1
    # also spans the records of other lanes: `make soak` checks its ledger against these exact ids.
    on_failure_sent: list[list[str]] = field(default_factory=list)
    records_read: int = 0
    largest_event_bytes: int = 0
    # Invocations Lambda would refuse: an event of one record at or over the payload limit.
    refused_too_large: int = 0
    events: list[MappingEvent] = field(default_factory=list)

    @property
    def on_failure_ids(self) -> list[str]:
        """The record ids of every record sent to the on-failure destination (`on_failure_sent`, flat)."""
        return [rid for batch in self.on_failure_sent for rid in batch]


def kinesis_event_record(
    record: dict[str, Any], shard_id: str, stream_arn: str, region: str, function_role_arn: str
) -> dict[str, Any]:
    """One record of a Kinesis event as Lambda hands it to a function (AWS's format)."""
    arrival = record["ApproximateArrivalTimestamp"]
    if isinstance(arrival, datetime.datetime):
        arrival = arrival.timestamp()
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": float(arrival),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": function_role_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def _event_bytes(records: list[dict[str, Any]]) -> int:
    return len(json.dumps({"Records": records}, separators=COMPACT)) if records else 0


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventSourceMapping:
    """Polls every shard of one stream and invokes `invoke(payload_bytes) -> InvokeResult`."""

    def __init__(
        self,
        *,
        kinesis_factory: Callable[[], Any],
        s3_factory: Callable[[], Any],
        stream_name: str,
        stream_arn: str,
        region: str,
        function_arn: str,
        function_role_arn: str,
        invoke: Callable[[bytes], InvokeResult],
        settings: MappingSettings,
        log: Callable[[str], None] = print,
    ) -> None:
        self.kinesis_factory = kinesis_factory
        self.s3_factory = s3_factory
        # What AWS assigns a mapping when it is created; it starts its on-failure objects' keys.
        self.uuid = str(uuid.uuid4())
        self.stream_name = stream_name
        self.stream_arn = stream_arn
        self.region = region
        self.function_arn = function_arn
        self.function_role_arn = function_role_arn
        self.invoke = invoke
        self.settings = settings
        self.log = log
        self.stats = MappingStats()
        self.paused = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._lanes: list[_Lane] = []  # every shard's lanes (parallelization_factor each)
        self._shards = 0
        self._polled_empty: set[str] = set()  # shards that have polled empty at least once
        self._last_activity = time.monotonic()  # last record read or batch finished

    # ---- lifecycle ----
    def start(self) -> None:
        kinesis = self.kinesis_factory()
        shards = kinesis.list_shards(StreamName=self.stream_name)["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            self._shards += 1
            t = threading.Thread(target=self._poll_shard, args=(shard_id,), name=f"esm-{shard_id}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)

    @contextlib.contextmanager
    def paused_polling(self) -> Iterator[None]:
        """Holds every shard's poller, so records written meanwhile arrive in one batch."""
        self.paused.set()
        try:
            yield
        finally:
            self.paused.clear()

    @contextlib.contextmanager
    def settings_changed(self, **changes: Any) -> Iterator[MappingSettings]:
        """Runs the mapping with some settings changed, and restores the previous ones after."""
        previous = self.settings
        self.settings = dataclasses.replace(previous, **changes)
        try:
            yield self.settings
        finally:
            self.settings = previous

    def idle_since(self) -> float | None:
        """Seconds since the last record was read or batch finished, or None while a lane
        holds records or a shard has not polled yet."""
        with self._lock:
            if any(lane.records or lane.delivering for lane in self._lanes) or len(self._polled_empty) < self._shards:
                return None
            return time.monotonic() - self._last_activity

    def wait_idle(self, quiet_s: float, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            idle = self.idle_since()
            if idle is not None and idle >= quiet_s:
                return True
            time.sleep(0.05)
        return False

    # ---- polling ----
    def _poll_shard(self, shard_id: str) -> None:
        """Reads the shard and deals its records to `parallelization_factor` lanes by partition
        key, each delivering its own batches in order (`_run_lane`)."""
        try:
            kinesis = self.kinesis_factory()
            iterator = kinesis.get_shard_iterator(
                StreamName=self.stream_name, ShardId=shard_id, ShardIteratorType=self.settings.starting_position
            )["ShardIterator"]
        except Exception:
            if self._stop.is_set():  # stopped while starting: moto may be gone already
                return
            raise
        n = max(1, self.settings.parallelization_factor)
        lanes = [_Lane(shard_id) for _ in range(n)]
        with self._lock:
            self._lanes.extend(lanes)
        for i, lane in enumerate(lanes):
            threading.Thread(target=self._run_lane, args=(lane,), name=f"esm-{shard_id}-{i}", daemon=True).start()
        while not self._stop.is_set():
            held = sum(len(lane.records) for lane in lanes)
            room = self.settings.batch_size * n - held  # read ahead at most a batch per lane
            if self.paused.is_set() or room <= 0:
                time.sleep(0.02)
                continue
            try:
                resp = kinesis.get_records(ShardIterator=iterator, Limit=min(10000, room))
            except Exception as error:  # a passing fault must not end this shard's poller
                if self._stop.is_set():
                    return
                self.log(f"{shard_id}: GetRecords failed ({error}); polling again")
                time.sleep(0.2)
                continue
            iterator = resp["NextShardIterator"]
            for r in resp["Records"]:
                # Lambda keeps the records of one partition key in one lane, in order.
                lane = lanes[zlib.crc32(r["PartitionKey"].encode()) % n]
                event_record = kinesis_event_record(r, shard_id, self.stream_arn, self.region, self.function_role_arn)
                with lane.lock:
                    lane.records.append(event_record)
            with self._lock:
                self.stats.records_read += len(resp["Records"])
                if resp["Records"]:
                    self._last_activity = time.monotonic()
                else:
                    self._polled_empty.add(shard_id)
            if not resp["Records"]:
                time.sleep(self.settings.poll_interval_s)

    def _run_lane(self, lane: _Lane) -> None:
        """Gathers a lane's records into batches (size, bytes, batching window) and delivers
        them one after another."""
        first_seen: float | None = None
        while not self._stop.is_set():
            with lane.lock:
                held = list(lane.records)
            if self.paused.is_set() or not held:
                first_seen = None if not held else first_seen
                time.sleep(self.settings.poll_interval_s)
                continue
            if first_seen is None:
                first_seen = time.monotonic()
            full = len(held) >= self.settings.batch_size or _event_bytes(held) >= self.settings.max_batch_bytes
            if not (full or time.monotonic() - first_seen >= self.settings.batching_window_s):
                time.sleep(self.settings.poll_interval_s)
                continue
            batch: list[dict[str, Any]] = []
            size = len('{"Records":[]}')
            for rec in held[: self.settings.batch_size]:
                rec_bytes = len(json.dumps(rec, separators=COMPACT)) + 1
                # The invoke payload must stay under the cap (Lambda: "smaller than").
                if batch and size + rec_bytes >= self.settings.max_batch_bytes:
                    break
                batch.append(rec)
                size += rec_bytes
            with lane.lock:
                del lane.records[: len(batch)]
                lane.delivering = True
                first_seen = time.monotonic() if lane.records else None
            try:
                self._deliver(lane.shard_id, batch)
            finally:
                with self._lock:
                    lane.delivering = False
                    self._last_activity = time.monotonic()

    # ---- one batch, with retries, bisection and the on-failure destination ----
    def _deliver(self, shard_id: str, batch: list[dict[str, Any]]) -> None:
        work: list[tuple[list[dict[str, Any]], int]] = [
            (batch, 0)
        ]  # (records, retries used); front first keeps the shard's order
        while work and not self._stop.is_set():
            records, retries = work.pop(0)
            if self._too_old(records):
                self._on_failure(shard_id, records, "RecordAgeExceeded", retries + 1, None)
                continue
            payload = json.dumps({"Records": records}, separators=COMPACT).encode()
            result = self._invoke_within_limit(payload)
            seqs = [r["kinesis"]["sequenceNumber"] for r in records]
            with self._lock:
                self.stats.invocations += 1
                self.stats.largest_event_bytes = max(self.stats.largest_event_bytes, len(payload))
            failed_from = None
            if result.function_error:
                outcome = "function_error"
                with self._lock:
                    self.stats.function_errors += 1
                if self.settings.bisect_on_function_error and len(records) > 1:
                    half = len(records) // 2
                    with self._lock:
                        self.stats.bisections += 1
                        self.stats.events.append((shard_id, seqs, len(payload), "bisect"))
                    work[0:0] = [(records[:half], retries), (records[half:], retries)]
                    continue
                failed_from = 0
            else:
                failed_from, outcome = self._first_failure(records, result.body)
            with self._lock:
                self.stats.events.append((shard_id, seqs, len(payload), outcome))
            if failed_from is None:
                continue  # checkpoint after the batch
            remaining = records[failed_from:]
            if self.settings.maximum_retry_attempts != -1 and retries >= self.settings.maximum_retry_attempts:
                self._on_failure(
                    shard_id,
                    remaining,
                    "RetryAttemptsExhausted",
                    retries + 1,
                    "Unhandled" if result.function_error else None,
                )
                continue
            with self._lock:
                self.stats.retries += 1
            delay = min(self.settings.retry_max_delay_s, self.settings.retry_base_delay_s * (2**retries))
            time.sleep(delay)
            work.insert(0, (remaining, retries + 1))

    def _invoke_within_limit(self, payload: bytes) -> InvokeResult:
        """The invocation, or Lambda's refusal of an event at or over its payload limit: only a
        batch of one record can be that large (a batch is cut before the limit), a record the
        stream took at a maximum record size over what an event can carry. AWS does not document
        what its mapping then does; here the function is never run, and the refusal counts as a
        failed invocation: retried, then sent to the on-failure destination."""
        if len(payload) < self.settings.max_batch_bytes:
            return self.invoke(payload)
        with self._lock:
            self.stats.refused_too_large += 1
        error = {
            "errorType": "RequestEntityTooLargeException",
            "errorMessage": f"Request must be smaller than {self.settings.max_batch_bytes} bytes "
            f"for the InvokeFunction operation (got {len(payload)})",
        }
        return InvokeResult(body=json.dumps(error).encode(), function_error="Unhandled", duration_ms=0.0)

    def _first_failure(self, records: list[dict[str, Any]], body: bytes) -> tuple[int | None, str]:
        """Index of the checkpoint after a successful invocation, or None when all succeeded."""
        if not self.settings.report_batch_item_failures:
            return None, "ok"
        try:
            response = json.loads(body) if body else None
        except ValueError:
            return None, "ok"  # Lambda treats an unparsable response as success
        failures = (response or {}).get("batchItemFailures") if isinstance(response, dict) else None
        if not failures:
            return None, "ok"
        index = {r["kinesis"]["sequenceNumber"]: i for i, r in enumerate(records)}
        positions = []
        for failure in failures:
            ident = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not ident or ident not in index:
                with self._lock:
                    self.stats.partial_failures += 1
                return 0, "invalid_item_identifier"  # whole batch fails
            positions.append(index[ident])
        with self._lock:
            self.stats.partial_failures += 1
        return min(positions), "partial_failure"

    def _too_old(self, records: list[dict[str, Any]]) -> bool:
        max_age = self.settings.maximum_record_age_s
        if max_age is None or max_age < 0:
            return False
        oldest = min(r["kinesis"]["approximateArrivalTimestamp"] for r in records)
        return time.time() - oldest > max_age

    def _on_failure(
        self,
        shard_id: str,
        records: list[dict[str, Any]],
        condition: str,
        invoke_count: int,
        function_error: str | None,
    ) -> None:
        with self._lock:
            self.stats.on_failure_batches += 1
            self.stats.on_failure_records += len(records)
            self.stats.on_failure_sent.append(
                [
                    rid
                    for r in records
                    for rid in record_ids(r["kinesis"]["partitionKey"], base64.b64decode(r["kinesis"]["data"]))
                ]
            )
        arrivals = [r["kinesis"]["approximateArrivalTimestamp"] for r in records]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": condition,
                "approximateInvokeCount": invoke_count,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                **({"functionError": function_error} if function_error else {}),
            },
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["kinesis"]["sequenceNumber"],
                "endSequenceNumber": records[-1]["kinesis"]["sequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(min(arrivals)),
                "approximateArrivalOfLastRecord": _iso(max(arrivals)),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        if not self.settings.on_failure_bucket:
            self.log(f"esm: {len(records)} records of {shard_id} discarded ({condition}); no on-failure destination")
            return
        # Only an S3 destination gets the records themselves.
        message["payload"] = json.dumps({"Records": records}, separators=COMPACT)
        key = self.on_failure_key(shard_id, datetime.datetime.now(datetime.UTC))
        # NOT Lambda's behaviour: Lambda gives a batch up when its on-failure record cannot be
        # written and counts the relay's DestinationDeliveryFailures (the alarm
        # relay-destination-delivery-failures). Here the shard does not move on until the
        # destination took the record: a refused write (`make soak` injects them) is tried
        # again, so the soak's accounting stays exact (docs/local-run.md says so).
        s3 = self.s3_factory()
        while True:
            try:
                s3.put_object(Bucket=self.settings.on_failure_bucket, Key=key, Body=json.dumps(message).encode())
                return
            except Exception as error:
                if self._stop.is_set():
                    raise
                with self._lock:
                    self.stats.on_failure_send_retries += 1
                self.log(f"esm: on-failure record of {shard_id} refused ({error}); sending again")
                time.sleep(0.2)

    def on_failure_key(self, shard_id: str, when: datetime.datetime) -> str:
        """`aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>`, AWS's
        documented key of an on-failure object (its prefix read from `shared::dead_letter`)."""
        return (
            f"{layout().mapping_prefix}{self.uuid}/{shard_id}/{when:%Y/%m/%d}/{when:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
        )
