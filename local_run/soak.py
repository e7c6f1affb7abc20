"""`make soak`: the local two-account run under a fault matrix, and a ledger checked record by record.

    python -m local_run.soak [--total 100000] [--faults default] [--seed 1] ...

(or TOTAL / FAULTS / SEED in the environment, which `make soak TOTAL=... FAULTS=...` passes on).

The producer Lambda writes most records (one scheduled tick after another); the soak writes the
rest itself, straight into the stream: records that share partition keys (so the order per key
means something: most producer records have a key of their own) and the records that carry the
record-level faults (`local_run.faults`). Everything else is injected where it happens: moto
(throttled Invokes and AssumeRoles, denied AssumeRoles, short-lived credentials, refused
PutRecords entries, failing GetRecords, a refusing dead-letter bucket) and the runtime emulator
(SIGKILLed relay and target processes, a target slower than the relay's timeout). The event
source mapping runs with `parallelizationFactor` above 1 and the relay and the target with
several warm containers each.

It prints progress every second, then the report and one RESULT line, and exits 1 when a
record is lost or unaccounted for, a key's records reached the target out of order (or the
producer failed, or fewer records were produced than asked), 2 on a usage error.

With a slow target (`--slow-target-ms`, SLOW_TARGET_MS: the target spends that long per record)
it runs twice, one Invoke per batch and then key-ordered delivery (the stack's
relayMaxRecordsPerInvocation, `--records-per-invocation`), and compares the records each
delivered per second and their order per key.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from local_run.containers import FunctionPool
from local_run.envelope import DeadLetterKind, produced_record
from local_run.faults import CLASSES, FaultInjector, FaultMatrixError, describe_matrix, parse_matrix
from local_run.functions import release_binaries
from local_run.harness import LocalRun, RunSpec
from local_run.ledger import Accounting
from local_run.metrics import names, totals
from local_run.program import ROOT

Say = Callable[[str], None]
NEAR_1_MIB = 1024 * 1024 - 4096  # a near-1 MiB record: data plus partition key under Kinesis's 1 MiB
SOAK_DIR = ROOT / ".demo" / "soak"
# Key-ordered delivery's records per Invoke in the slow-target comparison, unless given.
COMPARED_RECORDS_PER_INVOCATION = 25


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    p = argparse.ArgumentParser(description="Soak the local two-account run under a fault matrix.")
    p.add_argument("--total", type=int, default=int(env.get("TOTAL") or 100_000), help="records to produce")
    p.add_argument(
        "--faults",
        default=env.get("FAULTS") or "default",
        help="default | none | class:rate,... (a list may start with `default,`); classes: " + ", ".join(CLASSES),
    )
    p.add_argument("--seed", type=int, default=int(env.get("SEED") or 1), help="seed of every fault decision")
    p.add_argument("--records-per-tick", type=int, default=500, help="records per producer invocation")
    p.add_argument("--soak-share", type=float, default=0.1, help="share of the records the soak writes itself")
    p.add_argument("--keys", type=int, default=64, help="partition keys shared by the records the soak writes")
    p.add_argument("--parallelization-factor", type=int, default=4, help="the stack's parallelizationFactor")
    p.add_argument("--relay-containers", type=int, default=3)
    p.add_argument("--relay-concurrency", type=int, default=4, help="the stack's relayMaxConcurrentInvocations")
    p.add_argument(
        "--records-per-invocation",
        type=int,
        default=int(env.get("RECORDS_PER_INVOCATION") or 0),
        help="the stack's relayMaxRecordsPerInvocation: key-ordered delivery, at most this many records per Invoke "
        f"(0: off; env RECORDS_PER_INVOCATION; the slow-target comparison's default {COMPARED_RECORDS_PER_INVOCATION})",
    )
    p.add_argument(
        "--slow-target-ms",
        type=float,
        default=float(env.get("SLOW_TARGET_MS") or 0),
        help="the target spends this long per record (env SLOW_TARGET_MS); the soak then runs twice, one Invoke per "
        "batch and key-ordered delivery, and compares them",
    )
    p.add_argument(
        "--target-containers",
        type=int,
        help="default 3; with a slow target, relay containers x relay concurrency (a target container per Invoke)",
    )
    p.add_argument(
        "--relay-timeout", type=int, help="the stack's relayTimeoutSeconds (s); default 3, with a slow target 60"
    )
    p.add_argument("--max-retries", type=int, default=10, help="the stack's maximumRetryAttempts")
    p.add_argument("--drain-timeout", type=float, default=float(env.get("DRAIN_TIMEOUT") or 600))
    args = p.parse_args(argv)
    if args.total < 1 or args.records_per_tick < 1 or args.keys < 1 or not 0 <= args.soak_share < 1:
        p.error("--total, --records-per-tick and --keys must be at least 1, --soak-share from 0 to below 1")
    if args.slow_target_ms < 0 or args.records_per_invocation < 0 or args.relay_concurrency < 1:
        p.error("--slow-target-ms and --records-per-invocation must be at least 0, --relay-concurrency at least 1")
    slow = args.slow_target_ms > 0
    if args.target_containers is None:
        args.target_containers = args.relay_containers * args.relay_concurrency if slow else 3
    if args.relay_timeout is None:
        args.relay_timeout = 60 if slow else 3
    try:
        args.rates = parse_matrix(args.faults)
    except FaultMatrixError as err:
        p.error(str(err))
    return args


# ---- the records the soak writes ----
@dataclass
class Writer:
    """Writes the soak's own records, marking some with the record-level faults."""

    injector: FaultInjector
    keys: int
    key_of: dict[str, str] = field(default_factory=dict)  # record id -> partition key, when they differ
    marked: dict[str, list[str]] = field(default_factory=dict)  # fault class -> ids of the records it marked
    written: int = 0

    def batch(self, count: int) -> list[tuple[str, bytes]]:
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
        rid, data = produced_record(simulate=simulate, sequence=self.written, producer="soak")
        if simulate:
            self._mark("target_function_error" if "function_error" in simulate else "target_retry", rid)
        key = f"key-{self.injector.choose(self.keys)}"
        self.key_of[rid] = key
        return key, data


# ---- what the target saw ----
@dataclass(frozen=True)
class Deliveries:
    delivered_more_than_once: int  # ids the target answered ok twice or more
    recognised_by_dedup: int  # ... of which the target flagged a later delivery as a duplicate
    order_violations: int
    violations_sample: list[str]
    delivered: frozenset[str]  # ids the target answered ok at least once
    last_ok_at: float | None = None  # when the target logged its last ok (epoch seconds)


def analyse_deliveries(lines: Iterable[Mapping[str, Any]], key_of: Mapping[str, str]) -> Deliveries:
    """Duplicates and the order per partition key, from the target's `record processed` lines in
    the order they were logged. A key's sequence numbers must rise, apart from redeliveries: a
    sequence number below the highest one seen for its key that was never seen before is a
    violation (a later record of the key overtook it)."""
    ok_count: Counter[str] = Counter()
    flagged: set[str] = set()
    highest: dict[str, int] = {}
    seen: dict[str, set[int]] = {}
    violations: list[str] = []
    last_ok_at: float | None = None
    for line in lines:
        rid = str(line.get("record_id"))
        try:
            seq = int(line.get("sequence_number", ""))
        except ValueError:
            continue
        key = key_of.get(rid, rid)
        if line.get("outcome") == "ok":
            ok_count[rid] += 1
            if ok_count[rid] > 1 and line.get("duplicate") is True:
                flagged.add(rid)
            last_ok_at = max(last_ok_at or 0.0, logged_at(line))
        key_seen = seen.setdefault(key, set())
        if seq < highest.get(key, -1) and seq not in key_seen:
            violations.append(f"{key}: {seq} after {highest[key]}")
        key_seen.add(seq)
        highest[key] = max(highest.get(key, -1), seq)
    twice = {rid for rid, n in ok_count.items() if n > 1}
    return Deliveries(
        len(twice), len(twice & flagged), len(violations), violations[:5], frozenset(ok_count), last_ok_at
    )


def logged_at(line: Mapping[str, Any]) -> float:
    """A log line's `timestamp` (RFC 3339, UTC) in epoch seconds; 0 when it has none."""
    try:
        return datetime.datetime.fromisoformat(str(line["timestamp"])).timestamp()
    except (KeyError, ValueError):
        return 0.0


def dead_letters_by_reason(run: LocalRun, wanted: set[str]) -> dict[str, set[str]]:
    """Record ids per reason they were dead-lettered for (a record can have several)."""
    ids: dict[str, set[str]] = {}
    for m in run.ledger.dead_letters():
        kind = m.get("kind")
        if kind in (DeadLetterKind.REJECTED_BY_TARGET, DeadLetterKind.UNDELIVERABLE):
            reason, batch = str(kind), {str(m.get("partition_key"))} & wanted
        elif "KinesisBatchInfo" in m:
            condition = (m.get("requestContext") or {}).get("condition", "unknown")
            reason, batch = f"on_failure_{condition}", set(run.ledger.ids_in_range(m["KinesisBatchInfo"])) & wanted
        else:
            reason, batch = "unknown_message", set()
        ids.setdefault(reason, set()).update(str(i) for i in batch)
    return ids


@dataclass(frozen=True)
class Exact:
    """The accounting record by record against what was really dead-lettered: the relay's own
    dead letters name their record, and the mapping's on-failure batches are taken from the
    mapping itself (`MappingStats.on_failure_ids`), not from the sequence-number range of Lambda's
    on-failure record, which with parallelizationFactor > 1 also spans other lanes' records (so a
    record lost in another lane would look dead-lettered)."""

    dead_lettered: int  # never delivered, dead-lettered
    on_failure: int  # ... of which by the mapping's on-failure destination
    delivered_and_dead_lettered: int
    lost_ids: list[str]
    range_only: int  # never delivered, "dead-lettered" only by an on-failure range it was not in


def exact_accounting(run: LocalRun, by_reason: Mapping[str, set[str]], delivered: frozenset[str]) -> Exact:
    wanted = set(run.ledger.produced())
    relay_letters = set().union(*(ids for reason, ids in by_reason.items() if not reason.startswith("on_failure_")))
    on_failure = set(run.esm.stats.on_failure_ids) & wanted
    dead = (relay_letters | on_failure) & wanted
    by_range = set().union(*(ids for reason, ids in by_reason.items() if reason.startswith("on_failure_")))
    return Exact(
        dead_lettered=len(dead - delivered),
        on_failure=len(on_failure - delivered),
        delivered_and_dead_lettered=len(dead & delivered),
        lost_ids=sorted(wanted - delivered - dead),
        range_only=len(by_range - dead - delivered),
    )


# ---- memory ----
class PeakRss:
    """Peak resident memory (VmHWM) of each function's processes, sampled twice a second: a
    process killed between two samples contributes what it had reached at the last one."""

    def __init__(self, run: LocalRun) -> None:
        self._run = run
        self.peak_kib: Counter[str] = Counter()
        self._stop = threading.Event()
        threading.Thread(target=self._loop, name="rss", daemon=True).start()

    def _pids(self) -> dict[str, list[int]]:
        pids: dict[str, list[int]] = {"moto": [self._run.moto.proc.pid]}
        for name, host in self._run.hosts.items():
            found = host.pids() if isinstance(host, FunctionPool) else [host.pid]
            pids[name] = [p for p in found if p is not None]
        return pids

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            for name, pids in self._pids().items():
                for pid in pids:
                    self.peak_kib[name] = max(self.peak_kib[name], vm_hwm_kib(pid))

    def stop(self) -> dict[str, int]:
        self._stop.set()
        harness = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return {**self.peak_kib, "harness": harness}


def vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:  # the process ended
        pass
    return 0


# ---- the run ----
@dataclass
class Report:
    acc: Accounting  # the ledger's accounting, on-failure records read back as ranges (the operator's view)
    exact: Exact
    deliveries: Deliveries
    by_reason: dict[str, set[str]]  # dead-letter reason -> record ids
    injected: Counter[str]
    assume_role_calls: int
    assume_role_refused: int
    relay_timeouts: int  # relay invocations ended by Lambda's timeout (Sandbox.Timedout)
    deadline_deferred: int  # records the relay handed back because its time ran out (its metric)
    wall_s: float
    peak_rss_kib: dict[str, int]
    producer_errors: list[str]
    stats: dict[str, int]
    asked: int
    writer: Writer
    started_at: float  # when the first record was written (epoch seconds)
    logs_dir: str

    @property
    def delivered_per_s(self) -> float:
        """Distinct records delivered per second, from the first record written to the target's
        last ok (the wall time also counts the drain's quiet waits)."""
        span = (self.deliveries.last_ok_at or self.started_at) - self.started_at
        return len(self.deliveries.delivered) / span if span > 0 else 0.0

    @property
    def lost_ids(self) -> list[str]:
        """Neither delivered nor dead-lettered, by the exact accounting or by the ledger's."""
        return sorted(set(self.exact.lost_ids) | set(self.acc.unaccounted_ids))

    def problems(self) -> list[str]:
        """Why the run is not healthy, one line a reason; empty when it is."""
        a = self.acc
        found = [
            (a.lost > 0, f"{a.lost} records lost by the ledger's accounting"),
            (bool(a.unaccounted_ids), f"{len(a.unaccounted_ids)} records unaccounted: {a.unaccounted_ids[:5]}"),
            (bool(self.exact.lost_ids), f"{len(self.exact.lost_ids)} records lost: {self.exact.lost_ids[:5]}"),
            (a.produced < self.asked, f"produced {a.produced} of the {self.asked} records asked for"),
            (bool(self.producer_errors), f"{len(self.producer_errors)} producer errors: {self.producer_errors[:2]}"),
            (a.unknown_dead_letters > 0, f"{a.unknown_dead_letters} dead letters of no known kind"),
            (
                self.deliveries.order_violations > 0,
                f"{self.deliveries.order_violations} records reached the target after a later record of their key: "
                f"{self.deliveries.violations_sample}",
            ),
        ]
        return [reason for failed, reason in found if failed]

    @property
    def healthy(self) -> bool:
        return not self.problems()

    def result_line(self) -> str:
        a, e, d = self.acc, self.exact, self.deliveries
        faults = " ".join(f"fault_{name}={self.injected.get(name, 0)}" for name in CLASSES)
        return (
            f"RESULT produced={a.produced} delivered={a.delivered} duplicates={d.delivered_more_than_once} "
            f"dedup_recognised={d.recognised_by_dedup} dead_lettered={e.dead_lettered} "
            f"delivered_and_dead_lettered={e.delivered_and_dead_lettered} lost={len(self.lost_ids)} "
            f"order_violations={d.order_violations} assume_role_calls={self.assume_role_calls} "
            f"relay_timeouts={self.relay_timeouts} deadline_deferred={self.deadline_deferred} "
            f"records_per_s={a.produced / self.wall_s:.0f} delivered_per_s={self.delivered_per_s:.0f} {faults}"
        )


def start_run(args: argparse.Namespace, say: Say, work: Path) -> tuple[LocalRun, FaultInjector]:
    injector = FaultInjector(args.rates, seed=args.seed, started_at=time.time())
    key_ordered = {"relayMaxRecordsPerInvocation": str(args.records_per_invocation)}
    spec = RunSpec(
        binaries=release_binaries(work),
        work_dir=work,
        source_settings={
            "producerRecordsPerInvocation": str(args.records_per_tick),
            "parallelizationFactor": str(args.parallelization_factor),
            "relayTimeoutSeconds": str(args.relay_timeout),
            "maximumRetryAttempts": str(args.max_retries),
            "relayMaxConcurrentInvocations": str(args.relay_concurrency),
            **(key_ordered if args.records_per_invocation else {}),
        },
        target_settings={"faultInjection": "true"},
        containers={"relay": args.relay_containers, "target": args.target_containers},
        faults=injector,
        slow_target_ms=args.slow_target_ms,
    )
    return LocalRun.start(spec, progress=say), injector


def drive(run: LocalRun, injector: FaultInjector, args: argparse.Namespace, say: Say) -> Report:
    """Produces `args.total` records, waits until each is delivered or dead-lettered (or the
    drain timeout), and reports; the wall time runs from the first record to the report."""
    started, started_at = time.monotonic(), time.time()
    writer = Writer(injector, args.keys)
    rss = PeakRss(run)
    progress = Progress(run, injector, say)
    per_round = max(1, round(args.records_per_tick * args.soak_share / (1 - args.soak_share)))
    while len(run.ledger.produced()) < args.total:
        left = args.total - len(run.ledger.produced())
        if left >= args.records_per_tick:
            run.tick()
        run.put_records(writer.batch(min(per_round, left) if left >= args.records_per_tick else left))
        progress("producing")
    deadline = time.monotonic() + args.drain_timeout
    while time.monotonic() < deadline and not (run.esm.idle_since() is not None and run.ledger.settled()):
        for _ in range(10):  # the full accounting of settled() every 2 s, progress every second
            progress("draining")
            time.sleep(0.2)
    run.esm.wait_idle(quiet_s=2.0, timeout=30)  # late redeliveries and dead letters
    time.sleep(1.5)  # the dead-letter collector long-polls once a second
    wall = time.monotonic() - started
    acc = run.ledger.account()
    wanted = set(run.ledger.produced())
    by_reason = dead_letters_by_reason(run, wanted)
    deliveries = analyse_deliveries(run.ledger.target_lines(), writer.key_of)
    audit = run.moto.audit()
    relay_key = run.execution_credentials("relay").access_key_id
    assumes = [e for e in audit if e["event"] == "assume_role" and e["caller_access_key"] == relay_key]
    return Report(
        acc=acc,
        exact=exact_accounting(run, by_reason, deliveries.delivered),
        deliveries=deliveries,
        by_reason=by_reason,
        injected=injected(injector, audit),
        assume_role_calls=sum(1 for e in assumes if e["outcome"] == "ok"),
        assume_role_refused=sum(1 for e in assumes if e["outcome"] != "ok"),
        relay_timeouts=run.hosts["relay"].timeouts,
        deadline_deferred=int(totals(list(run.hosts["relay"].logs)).get(names().relay_records_deadline_deferred, 0)),
        wall_s=wall,
        peak_rss_kib=rss.stop(),
        producer_errors=list(run.ledger.producer_errors),
        stats={
            "relay invocations": run.esm.stats.invocations,
            "relay function errors (incl. timeouts, kills)": run.esm.stats.function_errors,
            "batch retries": run.esm.stats.retries,
            "bisections": run.esm.stats.bisections,
            "on-failure records sent": run.esm.stats.on_failure_batches,
            "on-failure sends retried": run.esm.stats.on_failure_send_retries,
            "target invocations": run.hosts["target"].invocations,
            "relay processes started": run.hosts["relay"].starts,
            "target processes started": run.hosts["target"].starts,
            "records written by the soak itself": writer.written,
        },
        asked=args.total,
        writer=writer,
        started_at=started_at,
        logs_dir=str(run.spec.work_dir / "logs"),
    )


def injected(injector: FaultInjector, audit: list[dict[str, Any]]) -> Counter[str]:
    """Faults injected in this process (records, runtime) and in moto (its audit's fault lines)."""
    counts = Counter(injector.injected)
    counts.update(e["class"] for e in audit if e.get("event") == "fault")
    return counts


class Progress:
    """The line printed every second, counted incrementally: a full accounting of 100,000 ids
    every second would take the harness's time from the data path."""

    def __init__(self, run: LocalRun, injector: FaultInjector, say: Say) -> None:
        self._run, self._injector, self._say = run, injector, say
        self._read = 0  # target log lines counted so far
        self._ok: set[str] = set()
        self._last = 0.0

    def __call__(self, label: str) -> None:
        if time.monotonic() - self._last < 1.0:
            return
        self._last = time.monotonic()
        logs = self._run.hosts["target"].logs
        end = len(logs)
        for entry in logs[self._read : end]:
            if entry.get("message") == "record processed" and entry.get("outcome") == "ok":
                self._ok.add(str(entry.get("record_id")))
        self._read = end
        s = self._run.esm.stats
        self._say(
            f"{label}: produced {len(self._run.ledger.produced())}, delivered {len(self._ok)}, "
            f"dead-letter objects {len(self._run.ledger.dead_letters())}, relay invocations {s.invocations}, "
            f"retries {s.retries}, faults injected here {sum(self._injector.injected.values())}"
        )


def print_report(report: Report, args: argparse.Namespace) -> None:
    a, e, d = report.acc, report.exact, report.deliveries
    rows: list[tuple[str, object]] = [
        ("fault matrix", describe_matrix(args.rates)),
        ("records produced (distinct ids)", a.produced),
        ("delivered (distinct ids the target answered ok)", a.delivered),
        (
            "delivered more than once / recognised by the target's dedup",
            f"{d.delivered_more_than_once} / {d.recognised_by_dedup}",
        ),
        ("dead-lettered (never delivered)", e.dead_lettered),
        ("  of which in the mapping's on-failure batches", e.on_failure),
        *(
            (f"  in the dead-letter bucket for {reason} (distinct ids; on-failure: by its range)", len(ids))
            for reason, ids in sorted(report.by_reason.items())
        ),
        ("on-failure records holding produced records", a.on_failure_batches),
        ("delivered AND dead-lettered (at-least-once; counted once, as delivered)", e.delivered_and_dead_lettered),
        ("lost (checked record by record)", len(report.lost_ids)),
        ("  lost as the ledger reads on-failure ranges (the operator's view)", a.lost),
        ("  never delivered, in an on-failure range but not in its batch", e.range_only),
        ("per-key order violations", d.order_violations),
        ("relay AssumeRole calls ok / refused", f"{report.assume_role_calls} / {report.assume_role_refused}"),
        ("relay invocations ended by Lambda's timeout (Sandbox.Timedout)", report.relay_timeouts),
        ("records the relay handed back as its time ran out (RecordsDeadlineDeferred)", report.deadline_deferred),
        ("end-to-end latency p50 / p99 (ms)", f"{a.p50_ms} / {a.p99_ms}"),
        (
            "wall time from the first record (s) / records per second",
            f"{report.wall_s:.1f} / {a.produced / report.wall_s:.0f}",
        ),
        ("records delivered per second (first record to the last delivery)", f"{report.delivered_per_s:.0f}"),
        ("relayMaxRecordsPerInvocation (key-ordered delivery)", args.records_per_invocation or "unset"),
        ("target processing time per record (ms)", f"{args.slow_target_ms:g}"),
        *report.stats.items(),
        *((f"fault {name} injected", report.injected.get(name, 0)) for name in CLASSES),
        *((f"peak RSS {name} (MiB)", f"{kib / 1024:.1f}") for name, kib in sorted(report.peak_rss_kib.items())),
    ]
    width = max(len(r[0]) for r in rows)
    print("\n" + "-" * (width + 24))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 24))
    if report.lost_ids:
        print(f"lost record ids ({len(report.lost_ids)}): {', '.join(report.lost_ids[:10])}")
    for v in d.violations_sample:
        print(f"order violation: {v}")
    for err in report.producer_errors[:3]:
        print(f"producer error: {err[:300]}")
    for problem in report.problems():
        print(f"not healthy: {problem}")
    print(f"logs: {report.logs_dir}")


def soak(args: argparse.Namespace, say: Say, work: Path = SOAK_DIR) -> Report:
    run, injector = start_run(args, say, work)
    try:
        say(f"soak: {args.total} records, faults: {describe_matrix(args.rates)}")
        return drive(run, injector, args, say)
    finally:
        run.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", flush=True)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        say(f"signal {signum}: stopping every process this run started")
        sys.exit(130 if signum == signal.SIGINT else 143)  # unwinds through run.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if args.slow_target_ms > 0:
            return compare_delivery(args, say)
        report = soak(args, say)
    except FileNotFoundError as err:
        print(f"soak: {err}", file=sys.stderr)
        return 2
    print_report(report, args)
    print(report.result_line(), flush=True)
    return 0 if report.healthy else 1


def compare_delivery(args: argparse.Namespace, say: Say) -> int:
    """The soak against the slow target twice, one Invoke per batch and then key-ordered delivery,
    each with its own local run; prints both reports and the two side by side. 0 only when both
    runs are healthy (nothing lost, no record of a key overtaken)."""
    per_invoke = args.records_per_invocation or COMPARED_RECORDS_PER_INVOCATION
    modes = {
        "one Invoke per batch (default)": ("one-invoke-per-batch", 0),
        f"key-ordered, relayMaxRecordsPerInvocation={per_invoke}": ("key-ordered", per_invoke),
    }
    reports: dict[str, tuple[Report, argparse.Namespace]] = {}
    for label, (folder, records_per_invocation) in modes.items():
        run_args = argparse.Namespace(**{**vars(args), "records_per_invocation": records_per_invocation})
        say(f"slow target ({args.slow_target_ms:g} ms per record): {label}")
        report = soak(run_args, say, SOAK_DIR / folder)
        print_report(report, run_args)
        print(report.result_line(), flush=True)
        reports[label] = (report, run_args)
    print(comparison(args, {label: report for label, (report, _) in reports.items()}), flush=True)
    return 0 if all(report.healthy for report, _ in reports.values()) else 1


def comparison(args: argparse.Namespace, reports: Mapping[str, Report]) -> str:
    """The runs side by side, then their ratio of records delivered per second."""
    lines = [
        f"\nslow target: {args.slow_target_ms:g} ms per record; relay: {args.relay_containers} containers, "
        f"relayMaxConcurrentInvocations={args.relay_concurrency}; target: {args.target_containers} containers",
        f"{'delivery':<48} {'delivered/s':>11} {'target invocations':>18} {'order violations':>16} {'lost':>5}",
    ]
    for label, r in reports.items():
        lines.append(
            f"{label:<48} {r.delivered_per_s:>11.0f} {r.stats['target invocations']:>18}"
            f" {r.deliveries.order_violations:>16} {len(r.lost_ids):>5}"
        )
    first, *rest = reports.values()
    for label, r in zip(list(reports)[1:], rest, strict=True):
        ratio = r.delivered_per_s / first.delivered_per_s if first.delivered_per_s else 0.0
        lines.append(f"{label} / {next(iter(reports))}: {ratio:.1f}x records delivered per second")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
