"""One soak run: the local run started with the settings (`start_run`), records produced until
the total is reached and drained until each is delivered or dead-lettered (`drive`), memory
sampled and progress printed meanwhile, and what it saw handed to the analysis and the report."""

from __future__ import annotations

import resource
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from local_run.containers import FunctionPool
from local_run.faults import FaultInjector, describe_matrix
from local_run.functions import release_binaries
from local_run.harness import LocalRun, RunSpec
from local_run.ledger import read_effects
from local_run.limits import limits
from local_run.metrics import names, totals
from local_run.soak.analysis import (
    analyse_deliveries,
    count_effects,
    dead_letters_by_reason,
    exact_accounting,
    good_dead_lettered,
    injected,
)
from local_run.soak.records import Writer
from local_run.soak.report import Report
from local_run.soak.settings import SOAK_DIR, SoakSettings
from local_run.stacks import TEST_DEVICES

Say = Callable[[str], None]


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
        """Stops sampling; the peaks per function, with the harness's own."""
        self._stop.set()
        harness = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return {**self.peak_kib, "harness": harness}


def vm_hwm_kib(pid: int) -> int:
    """A process's peak resident memory (KiB); 0 when it has ended."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:  # the process ended
        pass
    return 0


# ---- progress ----
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


# ---- the run ----
def start_run(settings: SoakSettings, say: Say, work: Path) -> tuple[LocalRun, FaultInjector]:
    """The local run the settings ask for (stack settings, containers, faults), started in `work`."""
    injector = FaultInjector(settings.rates, seed=settings.seed, started_at=time.time())
    key_ordered = {"relayMaxRecordsPerInvocation": str(settings.records_per_invocation)}
    spec = RunSpec(
        binaries=release_binaries(work),
        work_dir=work,
        source_settings={
            "producerRecordsPerInvocation": str(settings.records_per_tick),
            "parallelizationFactor": str(settings.parallelization_factor),
            "relayTimeoutSeconds": str(settings.relay_timeout),
            "maximumRetryAttempts": str(settings.max_retries),
            # kinesis_put_refused refuses an entry with up to 0.1 a try in the short soak: 5 tries
            # (the default) all refused is 1 in 100,000 records, about one short soak in 40; 8
            # tries (at most 12.7 s of back-off, within the producer's 30 s) make it 1 in 10^8.
            "producerMaxPutAttempts": "8",
            # Large records: the largest the stream may take whose event still reaches the relay.
            **(
                {"streamMaxRecordSizeKib": str(limits().lambda_consumer_max_record_bytes // 1024)}
                if settings.large
                else {}
            ),
            "relayMaxConcurrentInvocations": str(settings.relay_concurrency),
            **(key_ordered if settings.records_per_invocation else {}),
        },
        target_settings={**TEST_DEVICES, "idempotencyStore": str(settings.idempotency_store).lower()},
        containers={"relay": settings.relay_containers, "target": settings.target_containers},
        faults=injector,
        slow_target_ms=settings.slow_target_ms,
    )
    return LocalRun.start(spec, progress=say), injector


def drive(run: LocalRun, injector: FaultInjector, settings: SoakSettings, say: Say) -> Report:
    """Produces `settings.total` records, waits until each is delivered or dead-lettered (or the
    drain timeout), and reports; the wall time runs from the first record to the report."""
    started, started_at = time.monotonic(), time.time()
    writer = Writer(
        injector,
        settings.keys,
        aggregated=settings.aggregated,
        large=settings.large,
        # Over Kinesis's default record size, up to what the run's stream takes.
        large_sizes=(limits().kinesis_max_record_bytes + 1, run.environment.stream.max_record_bytes),
    )
    rss = PeakRss(run)
    progress = Progress(run, injector, say)
    per_tick = settings.records_per_tick
    per_round = max(1, round(per_tick * settings.soak_share / (1 - settings.soak_share)))
    while len(run.ledger.produced()) < settings.total:
        left = settings.total - len(run.ledger.produced())
        if left >= per_tick:
            run.tick()
        run.put_records(writer.batch(min(per_round, left) if left >= per_tick else left))
        progress("producing")
    deadline = time.monotonic() + settings.drain_timeout
    while time.monotonic() < deadline and not (run.esm.idle_since() is not None and run.ledger.settled()):
        for _ in range(10):  # the full accounting of settled() every 2 s, progress every second
            progress("draining")
            time.sleep(0.2)
    run.esm.wait_idle(quiet_s=2.0, timeout=30)  # late redeliveries and dead letters
    time.sleep(1.5)  # the dead-letter collector long-polls once a second
    wall = time.monotonic() - started
    acc = run.ledger.account()
    wanted = set(run.ledger.produced())
    by_reason = dead_letters_by_reason(run.ledger.dead_letters(), run.ledger.ids_in_range, wanted)
    deliveries = analyse_deliveries(run.ledger.target_lines(), writer.key_of)
    audit = run.moto.audit()
    relay_key = run.execution_credentials("relay").access_key_id
    assumes = [e for e in audit if e["event"] == "assume_role" and e["caller_access_key"] == relay_key]
    good = good_dead_lettered(wanted, writer.marked, by_reason, run.esm.stats.on_failure_sent, deliveries.delivered)
    effects_table = run.stacks.target.properties("effectsTable")["name"]
    dynamodb = run.aws.client("dynamodb", run.environment.admins[run.stacks.target_account])
    effects = count_effects(read_effects(dynamodb, effects_table), writer.marked.get("handler_killed_after_effect", []))
    return Report(
        acc=acc,
        collateral=good.collateral,
        mapping_gave_up=good.mapping_gave_up,
        exact=exact_accounting(wanted, run.esm.stats.on_failure_ids, by_reason, deliveries.delivered),
        deliveries=deliveries,
        effects=effects,
        by_reason=by_reason,
        injected=injected(injector.injected, audit),
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
        asked=settings.total,
        writer=writer,
        started_at=started_at,
        logs_dir=str(run.spec.work_dir / "logs"),
    )


def soak(settings: SoakSettings, say: Say, work: Path = SOAK_DIR) -> Report:
    """One soak run in `work`, from start to report; every process it started is stopped."""
    run, injector = start_run(settings, say, work)
    try:
        say(f"soak: {settings.total} records, faults: {describe_matrix(settings.rates)}")
        return drive(run, injector, settings, say)
    finally:
        run.stop()
