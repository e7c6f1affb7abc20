"""The report of a soak run: what it found (`Report`), whether it is healthy, the table and the
RESULT line it prints, and the slow-target comparison of two runs side by side."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from local_run.faults import CLASSES, describe_matrix
from local_run.ledger import Accounting
from local_run.soak.analysis import Deliveries, Effects, Exact
from local_run.soak.records import Writer
from local_run.soak.settings import SoakSettings


@dataclass
class Report:
    """Everything one soak run found, gathered when it ended."""

    acc: Accounting  # the ledger's accounting, on-failure records read back as ranges (the operator's view)
    exact: Exact
    collateral: list[str]  # good records dead-lettered with a poison neighbour or by the relay (`poison_collateral`)
    mapping_gave_up: list[str]  # good records only in on-failure batches without poison (`mapping_gave_up`)
    deliveries: Deliveries
    effects: Effects  # records whose effect ran more than once, from the sample's effects table
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
            (
                bool(self.collateral),
                f"{len(self.collateral)} good records dead-lettered (poison collateral): {self.collateral[:5]}",
            ),
            (
                bool(self.effects.duplicated),
                f"{len(self.effects.duplicated)} records whose effect ran more than once, not explained by a "
                f"kill after the effect: {self.effects.duplicated[:5]}",
            ),
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
        """Nothing lost or unaccounted, everything asked for produced, no key's order broken, no
        good record dead-lettered, no effect run twice unexplained."""
        return not self.problems()

    def result_line(self) -> str:
        """The one line `make soak` ends with, `RESULT name=value ...`, for a machine to read."""
        a, e, d = self.acc, self.exact, self.deliveries
        faults = " ".join(f"fault_{name}={self.injected.get(name, 0)}" for name in CLASSES)
        return (
            f"RESULT produced={a.produced} delivered={a.delivered} duplicates={d.delivered_more_than_once} "
            f"dedup_recognised={d.recognised_by_dedup} dead_lettered={e.dead_lettered} "
            f"delivered_and_dead_lettered={e.delivered_and_dead_lettered} lost={len(self.lost_ids)} "
            f"order_violations={d.order_violations} poison_collateral={len(self.collateral)} "
            f"mapping_gave_up={len(self.mapping_gave_up)} "
            f"effects_duplicated={len(self.effects.duplicated)} "
            f"effects_repeated_after_kill={len(self.effects.repeated_after_kill)} "
            f"aggregated_records={self.writer.aggregates} user_records={self.writer.user_records} "
            f"large_records={self.writer.large_records} "
            f"assume_role_calls={self.assume_role_calls} "
            f"relay_timeouts={self.relay_timeouts} deadline_deferred={self.deadline_deferred} "
            f"records_per_s={a.produced / self.wall_s:.0f} delivered_per_s={self.delivered_per_s:.0f} {faults}"
        )


def report_lines(report: Report, settings: SoakSettings) -> list[str]:
    """The report as printed: a table of what was counted, then the lost ids, the order
    violations, producer errors and problems found, and where the logs are."""
    a, e, d = report.acc, report.exact, report.deliveries
    rows: list[tuple[str, object]] = [
        ("fault matrix", describe_matrix(settings.rates)),
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
        ("good records dead-lettered, never delivered (poison collateral)", len(report.collateral)),
        ("good records given up by the mapping for the fault load alone", len(report.mapping_gave_up)),
        ("records whose effect ran more than once, unexplained (effects table)", len(report.effects.duplicated)),
        (
            "records whose effect ran again after a handler_killed_after_effect kill",
            len(report.effects.repeated_after_kill),
        ),
        ("idempotency store", "on" if settings.idempotency_store else "off"),
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
        ("relayMaxRecordsPerInvocation (key-ordered delivery)", settings.records_per_invocation or "unset"),
        ("target processing time per record (ms)", f"{settings.slow_target_ms:g}"),
        *report.stats.items(),
        *((f"fault {name} injected", report.injected.get(name, 0)) for name in CLASSES),
        *((f"peak RSS {name} (MiB)", f"{kib / 1024:.1f}") for name, kib in sorted(report.peak_rss_kib.items())),
    ]
    width = max(len(r[0]) for r in rows)
    lines = ["\n" + "-" * (width + 24)]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append("-" * (width + 24))
    if report.lost_ids:
        lines.append(f"lost record ids ({len(report.lost_ids)}): {', '.join(report.lost_ids[:10])}")
    lines += [f"order violation: {v}" for v in d.violations_sample]
    lines += [f"producer error: {err[:300]}" for err in report.producer_errors[:3]]
    lines += [f"not healthy: {problem}" for problem in report.problems()]
    lines.append(f"logs: {report.logs_dir}")
    return lines


def print_report(report: Report, settings: SoakSettings) -> None:
    """Prints `report_lines`."""
    for line in report_lines(report, settings):
        print(line)


def comparison(settings: SoakSettings, reports: Mapping[str, Report]) -> str:
    """The runs side by side, then their ratio of records delivered per second."""
    lines = [
        f"\nslow target: {settings.slow_target_ms:g} ms per record; relay: {settings.relay_containers} containers, "
        f"relayMaxConcurrentInvocations={settings.relay_concurrency}; target: {settings.target_containers} containers",
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
