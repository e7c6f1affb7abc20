"""The soak's command line: its options (each with an environment variable where `make soak`
passes one), read once into a `SoakSettings`; `main`, and the slow-target comparison's two runs."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Mapping
from types import FrameType, MappingProxyType

from local_run.faults import CLASSES, FaultMatrixError, parse_matrix
from local_run.soak.report import Report, comparison, print_report
from local_run.soak.run import Say, soak
from local_run.soak.settings import (
    COMPARED_RECORDS_PER_INVOCATION,
    DEFAULT_RELAY_TIMEOUT_S,
    DRAIN_S_PER_RECORD,
    MIN_DRAIN_S,
    SOAK_DIR,
    SoakSettings,
)


def parse_args(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> SoakSettings:
    """The settings from `argv` (default: the process's arguments), with TOTAL, FAULTS, SEED,
    RECORDS_PER_INVOCATION, SLOW_TARGET_MS, AGGREGATED, LARGE and DRAIN_TIMEOUT from `env`
    (default: the process's environment) as defaults. Exits 2 with a usage message on a value out of range."""
    env = os.environ if env is None else env
    p = argparse.ArgumentParser(
        prog="python -m local_run.soak", description="Soak the local two-account run under a fault matrix."
    )
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
        "--relay-timeout",
        type=int,
        help=f"the stack's relayTimeoutSeconds (s); default {DEFAULT_RELAY_TIMEOUT_S}, with a slow target 60",
    )
    p.add_argument("--max-retries", type=int, default=10, help="the stack's maximumRetryAttempts")
    p.add_argument(
        "--idempotency-store",
        choices=("true", "false"),
        default="true",
        help="the target stack's idempotencyStore (false: a redelivered record runs its effect again)",
    )
    shares = {  # option -> its variable, and what it is a share of
        "aggregated": (
            "AGGREGATED",
            "the share of the soak's own records written as user records of KPL aggregates, built by aws-kinesis-agg",
        ),
        "large": (
            "LARGE",
            "the share of the soak's own plain records written larger than Kinesis's default 1 MiB, up to the largest "
            "that reaches the relay (the stream's streamMaxRecordSizeKib set to it)",
        ),
    }
    for name, (variable, what) in shares.items():
        p.add_argument(
            f"--{name}", type=float, default=float(env.get(variable) or 0), help=f"{what} (env {variable}; default 0)"
        )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=float(env["DRAIN_TIMEOUT"]) if env.get("DRAIN_TIMEOUT") else None,
        help=f"seconds to wait after the last record is produced (env DRAIN_TIMEOUT); default {DRAIN_S_PER_RECORD} "
        f"per record of the total, at least {MIN_DRAIN_S}",
    )
    args = p.parse_args(argv)
    if args.total < 1 or args.records_per_tick < 1 or args.keys < 1 or not 0 <= args.soak_share < 1:
        p.error("--total, --records-per-tick and --keys must be at least 1, --soak-share from 0 to below 1")
    for name, (variable, _) in shares.items():
        if not 0 <= getattr(args, name) <= 1:
            p.error(f"--{name} ({variable}) is a share from 0 to 1, not {getattr(args, name)}")
    if args.slow_target_ms < 0 or args.records_per_invocation < 0 or args.relay_concurrency < 1:
        p.error("--slow-target-ms and --records-per-invocation must be at least 0, --relay-concurrency at least 1")
    try:
        rates = parse_matrix(args.faults)
    except FaultMatrixError as err:
        p.error(str(err))
    slow = args.slow_target_ms > 0
    return SoakSettings(
        total=args.total,
        faults=args.faults,
        rates=MappingProxyType(rates),
        seed=args.seed,
        records_per_tick=args.records_per_tick,
        soak_share=args.soak_share,
        keys=args.keys,
        parallelization_factor=args.parallelization_factor,
        relay_containers=args.relay_containers,
        relay_concurrency=args.relay_concurrency,
        records_per_invocation=args.records_per_invocation,
        slow_target_ms=args.slow_target_ms,
        target_containers=(
            args.target_containers
            if args.target_containers is not None
            else args.relay_containers * args.relay_concurrency
            if slow
            else 3
        ),
        relay_timeout=(
            args.relay_timeout if args.relay_timeout is not None else 60 if slow else DEFAULT_RELAY_TIMEOUT_S
        ),
        max_retries=args.max_retries,
        idempotency_store=args.idempotency_store == "true",
        aggregated=args.aggregated,
        large=args.large,
        drain_timeout=(
            args.drain_timeout if args.drain_timeout is not None else max(MIN_DRAIN_S, DRAIN_S_PER_RECORD * args.total)
        ),
    )


def main(argv: list[str] | None = None) -> int:
    """The soak (or, with a slow target, the comparison): 0 when healthy, 1 when not, 2 on a usage error."""
    settings = parse_args(argv)
    started = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", flush=True)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        say(f"signal {signum}: stopping every process this run started")
        sys.exit(130 if signum == signal.SIGINT else 143)  # unwinds through run.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if settings.slow_target:
            return compare_delivery(settings, say)
        report = soak(settings, say)
    except FileNotFoundError as err:
        print(f"soak: {err}", file=sys.stderr)
        return 2
    print_report(report, settings)
    print(report.result_line(), flush=True)
    return 0 if report.healthy else 1


def compare_delivery(settings: SoakSettings, say: Say) -> int:
    """The soak against the slow target twice, one Invoke per batch and then key-ordered delivery,
    each with its own local run; prints both reports and the two side by side. 0 only when both
    runs are healthy (nothing lost, no record of a key overtaken)."""
    reports: dict[str, Report] = {}
    for label, (folder, records_per_invocation) in settings.delivery_modes().items():
        run_settings = settings.with_records_per_invocation(records_per_invocation)
        say(f"slow target ({settings.slow_target_ms:g} ms per record): {label}")
        report = soak(run_settings, say, SOAK_DIR / folder)
        print_report(report, run_settings)
        print(report.result_line(), flush=True)
        reports[label] = report
    print(comparison(settings, reports), flush=True)
    return 0 if all(report.healthy for report in reports.values()) else 1
