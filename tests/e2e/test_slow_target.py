"""The slow target of `make soak SLOW_TARGET_MS=...`: the runtime emulator's processing time per
record, the comparison's arguments, and a short run of key-ordered delivery against a slow target
through the release binaries (its own local run) that keeps each key's order and loses nothing."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter

import pytest

from local_run.infra_command import ROOT
from local_run.runtime_api import FunctionHost, records_in
from local_run.soak.cli import parse_args
from local_run.soak.report import Report, comparison
from local_run.soak.run import soak
from local_run.soak.settings import SOAK_DIR


def envelope(records: int) -> bytes:
    return json.dumps({"version": 1, "delivery_id": "d", "records": [{"n": i} for i in range(records)]}).encode()


def test_records_in_counts_an_envelopes_records_and_nothing_else() -> None:
    assert records_in(envelope(7)) == 7
    assert records_in(envelope(0)) == 0
    for other in (b"not json", b"[1, 2]", b'{"records": "many"}', b'{"Records": [1]}'):
        assert records_in(other) == 0, other


def test_a_slow_target_keeps_its_container_busy_per_record() -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "local_run.fake_functions", "pid"]
    host = FunctionHost("f", command, env=env, arn="arn:x", timeout_s=10, processing_ms_per_record=40)
    try:
        host.invoke(envelope(0))  # the process's start is not part of the times measured below
        started = time.monotonic()
        assert host.invoke(envelope(10)).function_error is None
        slow = time.monotonic() - started
        started = time.monotonic()
        host.invoke(b"{}")
        other = time.monotonic() - started
    finally:
        host.stop()
    assert slow >= 0.4, slow
    assert other < 0.3, "no delay for a payload without records"


def test_a_slow_target_gives_each_relay_invoke_a_target_container_and_the_relay_time() -> None:
    args = parse_args(["--slow-target-ms", "20", "--relay-containers", "2", "--relay-concurrency", "5"])
    assert (args.target_containers, args.relay_timeout, args.records_per_invocation) == (10, 60, 0)
    plain = parse_args([])
    assert (plain.target_containers, plain.relay_timeout, plain.slow_target_ms) == (3, 8, 0)
    given = parse_args(["--slow-target-ms", "20", "--target-containers", "4", "--relay-timeout", "9"])
    assert (given.target_containers, given.relay_timeout) == (4, 9)


@pytest.mark.parametrize("bad", [["--slow-target-ms", "-1"], ["--records-per-invocation", "-2"]])
def test_a_negative_slow_target_setting_is_a_usage_error(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(bad)
    assert exited.value.code == 2
    assert "must be at least 0" in capsys.readouterr().err


@pytest.fixture(scope="module")
def key_ordered() -> Report:
    """Half the records on 12 shared keys, the target 2 ms a record, at most 10 records an Invoke."""
    run = ["--total", "1500", "--faults", "none", "--records-per-tick", "250", "--soak-share", "0.5", "--keys", "12"]
    args = parse_args([*run, "--relay-containers", "2", "--slow-target-ms", "2", "--records-per-invocation", "10"])
    return soak(args, lambda msg: print(f"[slow] {msg}", flush=True), SOAK_DIR / "e2e-slow-target")


def test_key_ordered_delivery_to_a_slow_target_keeps_each_keys_order_and_loses_nothing(key_ordered: Report) -> None:
    r = key_ordered
    assert r.problems() == [], r.result_line()
    assert r.deliveries.order_violations == 0, r.deliveries.violations_sample
    # The ledger balances: every record produced was delivered, none dead-lettered or lost.
    assert r.acc.produced == 1500 and r.acc.delivered == 1500 and r.exact.dead_lettered == 0, r.result_line()
    assert r.lost_ids == [] and r.acc.unaccounted_ids == []
    # The order check had something to check: shared keys with many records each.
    per_key = Counter(r.writer.key_of.values())
    assert len(per_key) == 12 and min(per_key.values()) >= 20, per_key
    # Key-ordered delivery ran: batches went out as several Invokes of at most 10 records.
    assert r.stats["target invocations"] >= 1500 / 10 > r.stats["relay invocations"], r.stats
    assert r.delivered_per_s > 0


def test_the_comparison_prints_each_run_and_their_ratio(key_ordered: Report) -> None:
    args = parse_args(["--slow-target-ms", "2", "--relay-containers", "2"])
    text = comparison(args, {"one Invoke per batch": key_ordered, "key-ordered": key_ordered})
    assert "slow target: 2 ms per record; relay: 2 containers" in text
    assert "target: 8 containers" in text
    assert "key-ordered / one Invoke per batch: 1.0x records delivered per second" in text
