"""`make demo`: the whole data path on this machine, two accounts, real release binaries.

    python -m local_run.demo [--ticks 200] [--interval 0.05] [--records 5] [--echo-logs]

(or TICKS / INTERVAL / RECORDS in the environment, which `make demo TICKS=...` passes on).
Exit status 0 only when nothing was lost.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

from local_run.functions import release_binaries
from local_run.harness import CrossAccountProof, LocalRun, RunSpec
from local_run.infra_command import ROOT, InfraError
from local_run.ledger import Accounting, result_line
from local_run.metrics import Agreement, EmfError, agreements
from local_run.stacks import TEST_DEVICES
from local_run.template import TemplateError

Say = Callable[[str], None]


def env_option(
    p: argparse.ArgumentParser, flag: str, kind: type[int] | type[float], default: float, about: str
) -> None:
    """`--flag N`, defaulting to the environment variable FLAG (as `make demo FLAG=N` passes it on).
    The default is given as text so that argparse checks it like a typed value and names a bad one."""
    var = flag.removeprefix("--").replace("-", "_").upper()
    p.add_argument(
        flag, type=kind, default=os.environ.get(var) or str(default), help=f"{about} (default {default}; env {var})"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Run producer -> Kinesis -> relay -> AssumeRole -> target locally.")
    env_option(p, "--ticks", int, 200, "scheduled producer invocations")
    env_option(p, "--interval", float, 0.05, "seconds between ticks; stands for the schedule's rate")
    env_option(p, "--records", int, 5, "records per producer invocation: the stack's producerRecordsPerInvocation")
    env_option(p, "--drain-timeout", float, 120, "seconds to wait for the last records after the last tick")
    p.add_argument(
        "--echo-logs",
        action="store_true",
        default=bool(os.environ.get("ECHO_LOGS")),
        help="print every function log line",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = ROOT / ".demo"
    started = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", flush=True)

    try:
        binaries = release_binaries(work)
    except FileNotFoundError as err:
        print(f"demo: {err}", file=sys.stderr)
        return 2
    spec = RunSpec(
        binaries=binaries,
        work_dir=work,
        # Stack config, exactly as a user would set it with `pulumi config set`: the template the
        # program renders from it is what the functions' environment comes from.
        source_settings={"producerRecordsPerInvocation": str(args.records)},
        target_settings=TEST_DEVICES,
        echo_logs=args.echo_logs,
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        say(f"signal {signum}: stopping every process this run started")
        # Unwinds a start in progress too: whatever it had started is stopped on the way out.
        sys.exit(130 if signum == signal.SIGINT else 143)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        run = LocalRun.start(spec, progress=say)
    except TemplateError as err:
        print(f"demo: cannot render the Pulumi program: {err}", file=sys.stderr)
        return 2
    except InfraError as err:  # the infra binary is missing and could not be built
        print(f"demo: {err}", file=sys.stderr)
        return 2
    try:
        return drive(run, args, say, started)
    finally:
        run.stop()


def drive(run: LocalRun, args: argparse.Namespace, say: Say, started: float) -> int:
    """The schedule, the drain, the summary: 0 only when nothing was lost."""
    for f, env in run.functions.template_env.items():
        say(f"{f} environment from the template: {', '.join(sorted(env))}")
    proof = run.prove_cross_account()
    say(
        f"cross-account proof: Invoke of the target with source-account credentials -> "
        f"{proof.source_credentials_invoke or 'ACCEPTED (wrong!)'}; AssumeRole without the external id -> "
        f"{proof.assume_without_external_id or 'ACCEPTED (wrong!)'}"
    )

    say(f"schedule: {args.ticks} ticks every {args.interval}s, {args.records} records each")
    next_tick = time.monotonic()
    last_report = 0.0
    for i in range(1, args.ticks + 1):
        run.tick()
        next_tick += args.interval
        now = time.monotonic()
        if now - last_report >= 1.0 or i == args.ticks:
            last_report = now
            report_progress(run, say, f"tick {i}/{args.ticks}")
        if next_tick > now:
            time.sleep(next_tick - now)
    deadline = time.monotonic() + args.drain_timeout
    while time.monotonic() < deadline:
        if run.ledger.settled() and run.esm.idle_since() is not None:
            break
        if time.monotonic() - last_report >= 1.0:
            last_report = time.monotonic()
            report_progress(run, say, "draining")
        time.sleep(0.1)
    # Let late duplicates or dead letters arrive before counting.
    run.esm.wait_idle(quiet_s=1.5, timeout=10)
    time.sleep(1.2)
    acc = run.ledger.account()
    assume_calls = run.relay_assume_role_calls()
    proof = run.prove_cross_account()
    try:
        metrics = agreements({f: list(host.logs) for f, host in run.hosts.items()}, run.ledger, acc)
    except EmfError as err:
        print(f"demo: a function printed a bad metrics line: {err}", file=sys.stderr)
        metrics = []
    print_summary(run, acc, assume_calls, proof, time.monotonic() - started, metrics)
    print(result_line(acc, assume_calls), flush=True)
    healthy = (
        bool(metrics)
        and all(m.agrees for m in metrics)
        and acc.lost == 0
        and not acc.unaccounted_ids
        and acc.produced > 0
        and not run.ledger.producer_errors
        and proof.source_credentials_invoke == "ResourceNotFoundException"
        and proof.assume_without_external_id is not None
    )
    return 0 if healthy else 1


def report_progress(run: LocalRun, say: Say, label: str) -> None:
    acc = run.ledger.account()
    s = run.esm.stats
    say(
        f"{label}: produced {acc.produced}, delivered {acc.delivered}, dead-lettered {acc.dead_lettered}, "
        f"relay invocations {s.invocations}, target invocations {run.hosts['target'].invocations}"
    )


def print_summary(
    run: LocalRun,
    acc: Accounting,
    assume_calls: int,
    proof: CrossAccountProof,
    elapsed: float,
    metrics: list[Agreement],
) -> None:
    s = run.esm.stats
    h = run.hosts
    rows = [
        ("records produced (producer's record_ids)", acc.produced),
        ("delivered (distinct ids the target answered ok)", acc.delivered),
        ("rejected by the target -> dead-letter bucket", acc.rejected),
        ("on-failure batches (event source mapping)", acc.on_failure_batches),
        ("dead-lettered records", acc.dead_lettered),
        ("objects in the dead-letter bucket holding them", acc.dead_letter_objects),
        ("lost (produced - delivered - dead-lettered)", acc.lost),
        ("producer invocations / errors", f"{h['producer'].invocations} / {len(run.ledger.producer_errors)}"),
        ("relay invocations / function errors", f"{s.invocations} / {s.function_errors}"),
        ("batch retries / bisections", f"{s.retries} / {s.bisections}"),
        (
            "target invocations through moto (assumed-role creds)",
            f"{proof.target_invokes} ({proof.target_invokes_by_target_account_assumed_role} "
            f"signed in {run.stacks.target_account})",
        ),
        ("relay AssumeRole calls (counted by moto)", assume_calls),
        ("Invoke with source-account credentials", proof.source_credentials_invoke or "accepted (WRONG)"),
        ("function processes started (cold starts)", ", ".join(f"{f} {h[f].starts}" for f in h)),
        ("end-to-end latency p50 / p99 (ms)", f"{acc.p50_ms} / {acc.p99_ms}"),
        ("wall time (s)", f"{elapsed:.1f}"),
        *(("metrics: " + m.row()[0], m.row()[1]) for m in metrics),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    print("-" * (width + 20))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 20))
    if acc.unaccounted_ids:
        print(f"unaccounted record ids ({len(acc.unaccounted_ids)}): {', '.join(acc.unaccounted_ids[:10])}")
    for err in run.ledger.producer_errors[:3]:
        print(f"producer error: {err[:300]}")
    print(
        f"logs: {run.spec.work_dir}/logs/ (one file per function, its EMF metrics lines among them; moto.log, moto-audit.jsonl)"
    )


if __name__ == "__main__":
    sys.exit(main())
