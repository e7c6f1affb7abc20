"""The soak's pure parts, without a run: its settings from the command line, the analysis of
what a run saw (deliveries and order per key, effects run more than once, dead letters by
reason, the exact accounting, the faults injected) and the report built from it (health, RESULT line, table, comparison). Each
expected count below is worked out by hand from the inputs, so a miscount fails."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections import Counter
from typing import Any

import pytest
from aws_kinesis_agg import MAGIC

from local_run.faults import CLASSES, FaultInjector
from local_run.ledger import Accounting, Effect
from local_run.soak.analysis import (
    Deliveries,
    Effects,
    Exact,
    GoodDeadLettered,
    analyse_deliveries,
    count_effects,
    dead_letter_ids,
    dead_letters_by_reason,
    exact_accounting,
    good_dead_lettered,
    injected,
    logged_at,
    relay_letter_ids,
)
from local_run.soak.cli import parse_args
from local_run.soak.records import AGGREGATE_PARTITION_KEY, MALFORMED_PREFIX, Writer
from local_run.soak.report import Report, comparison, report_lines
from local_run.soak.settings import COMPARED_RECORDS_PER_INVOCATION, SoakSettings
from local_run.stream import record_ids


# ---- settings ----
def test_the_settings_take_their_defaults_from_the_environment_and_are_frozen() -> None:
    env = {"TOTAL": "250", "FAULTS": "target_kill:0.5", "SEED": "9", "RECORDS_PER_INVOCATION": "7"}
    settings = parse_args([], env=env)
    assert (settings.total, settings.faults, settings.seed) == (250, "target_kill:0.5", 9)
    assert dict(settings.rates) == {"target_kill": 0.5} and settings.records_per_invocation == 7
    assert parse_args(["--total", "3"], env=env).total == 3, "the command line wins over the environment"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.total = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.rates["target_kill"] = 1.0  # type: ignore[index]


def test_the_comparison_runs_one_invoke_per_batch_then_key_ordered_delivery() -> None:
    settings = parse_args(["--slow-target-ms", "5"], env={})
    assert settings.slow_target and not parse_args([], env={}).slow_target
    assert settings.delivery_modes() == {
        "one Invoke per batch (default)": ("one-invoke-per-batch", 0),
        f"key-ordered, relayMaxRecordsPerInvocation={COMPARED_RECORDS_PER_INVOCATION}": (
            "key-ordered",
            COMPARED_RECORDS_PER_INVOCATION,
        ),
    }
    given = parse_args(["--slow-target-ms", "5", "--records-per-invocation", "8"], env={})
    assert list(given.delivery_modes().values())[1] == ("key-ordered", 8)
    changed = given.with_records_per_invocation(0)
    assert changed.records_per_invocation == 0 and given.records_per_invocation == 8
    assert dataclasses.replace(changed, records_per_invocation=8) == given


def test_the_idempotency_store_is_on_unless_the_command_line_turns_it_off() -> None:
    assert parse_args([], env={}).idempotency_store
    assert not parse_args(["--idempotency-store", "false"], env={}).idempotency_store
    with pytest.raises(SystemExit):
        parse_args(["--idempotency-store", "no"], env={})


# ---- effects ----
def effect(*deliveries: str, applied: int | None = None) -> Effect:
    """An item of the effects table: the deliveries in the order the effect ran under them."""
    return Effect(len(deliveries) if applied is None else applied, frozenset(deliveries), deliveries[0])


def test_effects_run_once_are_neither_duplicated_nor_repeated() -> None:
    counted = count_effects({"a": effect("d1"), "b": effect("d2")}, kill_marked=[])
    assert counted == Effects([], [], frozenset())


def test_a_repeat_without_a_kill_is_duplicated_whatever_its_deliveries() -> None:
    counted = count_effects(
        {"a": effect("d1", "d2"), "b": effect("d3", applied=2), "c": effect("d4")},
        kill_marked=[],
    )
    # b ran twice under one delivery id: still twice.
    assert counted.duplicated == ["a", "b"] and counted.repeated_after_kill == []


def test_a_kill_explains_one_more_run_of_each_record_whose_effect_ran_in_its_delivery() -> None:
    effects = {
        "k": effect("d1", "d5"),  # kill-marked: aborted d1 after its first effect, ran again in d5
        "n": effect("d1", "d6"),  # ran in d1 before the abort, its completion never stored
        "late": effect("d7", "d8"),  # in d1 too but had not run when d1 ended: no excuse
        "twice": effect("d1", "d5", "d9"),  # one run more than the kill explains
        "k2": effect("d6", "d10"),  # a second kill in d6, which n's and twice's reruns ran in
        "m": effect("d1", "d6", "d11"),  # in both kill deliveries: two repeats, both explained
        "once": effect("d1"),
    }
    counted = count_effects(effects, kill_marked=["k", "k2", "never-ran"])
    assert counted.kill_deliveries == {"d1", "d6"}
    assert counted.repeated_after_kill == ["k", "k2", "m", "n"]
    assert counted.duplicated == ["late", "twice"]


# ---- deliveries ----
def line(rid: str, seq: int | str, outcome: str = "ok", **more: Any) -> dict[str, Any]:
    return {"record_id": rid, "sequence_number": str(seq), "outcome": outcome, **more}


def test_deliveries_count_distinct_ids_answered_ok_and_the_last_ok() -> None:
    lines = [
        line("a", 1, timestamp="2026-01-01T00:00:01+00:00"),
        line("b", 2, "rejected", timestamp="2026-01-01T00:00:09+00:00"),  # not ok: not delivered, not the last ok
        line("c", 3, timestamp="2026-01-01T00:00:04+00:00"),
        line("a", 1, timestamp="2026-01-01T00:00:03+00:00"),  # again: one id, delivered twice
        line("d", "not a number"),  # unreadable: skipped entirely
        line("e", 5, duplicate=True),  # flagged on its first ok: not a recognised duplicate ...
        line("e", 5),  # ... and its second ok is not flagged
        line("f", 6),
        line("f", 6, duplicate=True),  # delivered twice, the second recognised by the target's dedup
    ]
    result = analyse_deliveries(lines, {})
    assert result.delivered == frozenset({"a", "c", "e", "f"})
    assert (result.delivered_more_than_once, result.recognised_by_dedup, result.order_violations) == (3, 1, 0)
    assert result.last_ok_at == logged_at({"timestamp": "2026-01-01T00:00:04+00:00"}) == 1767225604.0
    assert analyse_deliveries([], {}).last_ok_at is None


def test_a_record_without_a_shared_key_is_its_own_key_and_violations_are_sampled_five() -> None:
    # Ids not in key_of are keyed by themselves: descending sequence numbers across them are fine.
    assert analyse_deliveries([line("x", 9), line("y", 5), line("z", 1)], {}).order_violations == 0
    shared = {f"r{i}": "k" for i in range(8)}
    overtaken = [line("r7", 100)] + [line(f"r{i}", i) for i in range(7)]  # seven records after a later one
    result = analyse_deliveries(overtaken, shared)
    assert result.order_violations == 7
    assert result.violations_sample == [f"k: {i} after 100" for i in range(5)]
    # A redelivery (a sequence number seen before for its key) is not a violation, even after a later one.
    redelivered = [line("r1", 1, "retry"), line("r2", 2), line("r1", 1), line("r2", 2)]
    assert analyse_deliveries(redelivered, shared).order_violations == 0


def test_logged_at_is_zero_without_a_readable_timestamp() -> None:
    assert logged_at({}) == 0.0 and logged_at({"timestamp": "yesterday"}) == 0.0


# ---- dead letters ----
def test_dead_letters_are_counted_by_reason_and_only_for_the_records_produced() -> None:
    ranges = {("shard-1", "10", "12"): ["p3", "p4", "other"]}
    asked: list[dict[str, Any]] = []

    def ids_in_range(info: dict[str, Any]) -> list[str]:
        asked.append(info)
        return ranges[(info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"])]

    info = {"shardId": "shard-1", "startSequenceNumber": "10", "endSequenceNumber": "12"}
    letters: list[dict[str, Any]] = [
        {"kind": "rejected_by_target", "partition_key": "p1"},
        {"kind": "rejected_by_target", "partition_key": "p1"},  # the same record twice: one id
        {"kind": "undeliverable", "partition_key": "p2"},
        {"kind": "undeliverable", "partition_key": "not-produced"},
        # A poison record the relay isolated, written under a key that is not its id: named by its data.
        {
            "kind": "target_function_error",
            "partition_key": "key-3",
            "data_base64": base64.b64encode(json.dumps({"id": "p5"}).encode()).decode(),
        },
        {"kind": "target_function_error", "partition_key": "p6", "data_base64": "not base64!"},
        {"KinesisBatchInfo": info, "requestContext": {"condition": "RetryAttemptsExhausted"}},
        {"KinesisBatchInfo": info},  # no condition
        {"note": "something else"},
    ]
    wanted = {"p1", "p2", "p3", "p4", "p5", "p6"}
    by_reason = dead_letters_by_reason(letters, ids_in_range, wanted)
    assert by_reason == {
        "rejected_by_target": {"p1"},
        "undeliverable": {"p2"},
        "target_function_error": {"p5", "p6"},
        "on_failure_RetryAttemptsExhausted": {"p3", "p4"},
        "on_failure_unknown": {"p3", "p4"},
        "unknown_message": set(),
    }
    assert asked == [info, info]


def test_the_exact_accounting_counts_each_record_once() -> None:
    wanted = {"a", "b", "c", "d", "e", "f"}
    delivered = frozenset({"a", "b"})
    by_reason = {"rejected_by_target": {"c", "b"}, "on_failure_RetryAttemptsExhausted": {"d", "e"}}
    exact = exact_accounting(wanted, ["d", "z"], by_reason, delivered)
    # dead-lettered: c (relay) and d (the mapping's batch), not b (delivered too), not z (not produced);
    # e is only in d's on-failure range, not in its batch: lost, and counted as range-only.
    assert exact == Exact(
        dead_lettered=2, on_failure=1, delivered_and_dead_lettered=1, lost_ids=["e", "f"], range_only=1
    )
    everything = exact_accounting(wanted, [], {"undeliverable": {"c", "d", "e", "f"}}, delivered)
    assert (everything.dead_lettered, everything.lost_ids, everything.range_only) == (4, [], 0)


def test_dead_letter_ids_are_the_relays_letters_and_the_mappings_batches() -> None:
    by_reason = {
        "target_function_error": {"poison"},
        "on_failure_RetryAttemptsExhausted": {"in-range"},  # a range only: not in the mapping's batch
    }
    assert relay_letter_ids(by_reason) == {"poison"}
    assert dead_letter_ids(["good-1", "elsewhere"], by_reason) == {"poison", "good-1", "elsewhere"}


def test_poison_collateral_is_a_good_record_dead_lettered_by_the_relay_or_beside_poison() -> None:
    wanted = {"good-1", "good-2", "good-3", "good-4", "good-5", "good-6", "poison", "poison-2", "rejected", "flaky"}
    marked = {
        "target_function_error": ["poison", "poison-2"],
        "target_rejected": ["rejected"],
        "malformed": ["bad-json"],
        "target_retry": ["flaky"],  # may use up its retries on its own account: not collateral
    }
    by_reason = {
        "target_function_error": {"poison", "good-6"},  # good-6: dead-lettered by the relay
        "rejected_by_target": {"rejected"},
        "on_failure_RetryAttemptsExhausted": {"good-5"},  # a range only: not in the mapping's batch
    }
    sent = [
        ["poison-2", "good-1", "good-2"],  # a poison record took its neighbours along
        ["good-3", "flaky"],  # the fault load used up the batch's retries: no poison in it
        ["good-4"],
    ]
    # good-2 was dead-lettered with the poison but delivered too: neither.
    good = good_dead_lettered(wanted, marked, by_reason, sent, frozenset({"good-2"}))
    assert good == GoodDeadLettered(collateral=["good-1", "good-6"], mapping_gave_up=["good-3", "good-4"])
    # A record both beside poison and in a batch without: collateral.
    good = good_dead_lettered(wanted, marked, by_reason, [*sent, ["good-1"]], frozenset({"good-2"}))
    assert good.collateral == ["good-1", "good-6"]
    delivered = frozenset({"good-1", "good-2", "good-3", "good-4", "good-6"})
    assert good_dead_lettered(wanted, marked, by_reason, sent, delivered) == GoodDeadLettered([], [])


def test_faults_injected_here_and_in_moto_add_up() -> None:
    here = Counter({"target_kill": 2, "malformed": 1})
    audit = [
        {"event": "fault", "class": "sts_deny"},
        {"event": "fault", "class": "target_kill"},
        {"event": "assume_role", "class": "sts_deny"},  # not a fault line
    ]
    assert injected(here, audit) == Counter({"target_kill": 3, "malformed": 1, "sts_deny": 1})
    assert here == Counter({"target_kill": 2, "malformed": 1}), "the injector's own counts stay as they were"


# ---- the report ----
def accounting(**changed: Any) -> Accounting:
    clean = Accounting(
        produced=10,
        delivered=8,
        rejected=1,
        poison=0,
        dead_lettered=2,
        dead_letter_objects=2,
        on_failure_batches=1,
        lost=0,
        unaccounted_ids=[],
        delivered_and_dead_lettered=[],
        duplicate_produced_ids=0,
        unknown_dead_letters=0,
        p50_ms=12.0,
        p99_ms=40.0,
    )
    return dataclasses.replace(clean, **changed)


def report(**changed: Any) -> Report:
    delivered = frozenset(f"r{i}" for i in range(8))
    clean = Report(
        acc=accounting(),
        exact=Exact(dead_lettered=2, on_failure=1, delivered_and_dead_lettered=0, lost_ids=[], range_only=0),
        collateral=[],
        mapping_gave_up=["r7"],
        deliveries=Deliveries(3, 2, 0, [], delivered, last_ok_at=1004.0),
        effects=Effects(duplicated=[], repeated_after_kill=["r2", "r3"], kill_deliveries=frozenset({"d1"})),
        by_reason={"rejected_by_target": {"r8"}, "on_failure_RetryAttemptsExhausted": {"r9"}},
        injected=Counter({"target_kill": 4}),
        assume_role_calls=6,
        assume_role_refused=1,
        relay_timeouts=0,
        deadline_deferred=5,
        wall_s=2.0,
        peak_rss_kib={"relay": 2048},
        producer_errors=[],
        stats={"target invocations": 11},
        asked=10,
        writer=Writer(FaultInjector({}, seed=1, started_at=0.0), keys=1),
        started_at=1000.0,
        logs_dir="/tmp/logs",
    )
    return dataclasses.replace(clean, **changed)


def test_a_clean_report_is_healthy_and_its_result_line_says_what_was_counted() -> None:
    r = report()
    assert r.problems() == [] and r.healthy and r.lost_ids == []
    assert r.delivered_per_s == 2.0  # 8 ids over the 4 s from the first record to the last ok
    faults = " ".join(f"fault_{name}={4 if name == 'target_kill' else 0}" for name in CLASSES)
    assert r.result_line() == (
        "RESULT produced=10 delivered=8 duplicates=3 dedup_recognised=2 dead_lettered=2 "
        "delivered_and_dead_lettered=0 lost=0 order_violations=0 poison_collateral=0 mapping_gave_up=1 "
        "effects_duplicated=0 effects_repeated_after_kill=2 aggregated_records=0 user_records=0 large_records=0 assume_role_calls=6 relay_timeouts=0 "
        f"deadline_deferred=5 records_per_s=5 delivered_per_s=2 {faults}"
    )


def test_each_problem_makes_the_report_unhealthy_and_is_named() -> None:
    exact_lost = dataclasses.replace(report().exact, lost_ids=["r9"])
    cases = {
        "1 records lost by the ledger's accounting": report(acc=accounting(lost=1)),
        "1 records unaccounted: ['r8']": report(acc=accounting(unaccounted_ids=["r8"])),
        "1 records lost: ['r9']": report(exact=exact_lost),
        "produced 10 of the 12 records asked for": report(asked=12),
        "1 producer errors: ['boom']": report(producer_errors=["boom"]),
        "2 dead letters of no known kind": report(acc=accounting(unknown_dead_letters=2)),
        "1 good records dead-lettered (poison collateral): ['r9']": report(collateral=["r9"]),
        "1 records whose effect ran more than once, not explained by a kill after the effect: ['r4']": report(
            effects=Effects(duplicated=["r4"], repeated_after_kill=[], kill_deliveries=frozenset())
        ),
        "1 records reached the target after a later record of their key: ['k: 1 after 3']": report(
            deliveries=Deliveries(0, 0, 1, ["k: 1 after 3"], frozenset())
        ),
    }
    for problem, r in cases.items():
        assert r.problems() == [problem] and not r.healthy, problem
    both = report(acc=accounting(unaccounted_ids=["r8"]), exact=exact_lost)
    assert both.lost_ids == ["r8", "r9"] and " lost=2 " in both.result_line()


def test_the_printed_report_names_every_count_and_what_is_wrong() -> None:
    settings = parse_args(["--faults", "none", "--records-per-invocation", "4"], env={})
    lines = report_lines(report(asked=12), settings)
    rows = [row.rpartition("  ") for row in lines[1:] if "  " in row]
    table = {name.strip(): value for name, _, value in rows}
    assert table["records produced (distinct ids)"] == "10"
    assert table["delivered more than once / recognised by the target's dedup"] == "3 / 2"
    assert table["dead-lettered (never delivered)"] == "2"
    assert table["in the dead-letter bucket for rejected_by_target (distinct ids; on-failure: by its range)"] == "1"
    assert table["relayMaxRecordsPerInvocation (key-ordered delivery)"] == "4"
    assert table["good records dead-lettered, never delivered (poison collateral)"] == "0"
    assert table["good records given up by the mapping for the fault load alone"] == "1"
    assert table["records whose effect ran more than once, unexplained (effects table)"] == "0"
    assert table["records whose effect ran again after a handler_killed_after_effect kill"] == "2"
    assert table["idempotency store"] == "on"
    assert table["fault target_kill injected"] == "4"
    assert table["peak RSS relay (MiB)"] == "2.0"
    assert table["target invocations"] == "11"
    assert "not healthy: produced 10 of the 12 records asked for" in lines
    assert lines[-1] == "logs: /tmp/logs"


def test_the_comparison_divides_the_second_runs_rate_by_the_firsts() -> None:
    settings = parse_args(["--slow-target-ms", "2", "--relay-containers", "2", "--relay-concurrency", "3"], env={})
    slow = report()  # 2 records per second
    fast = report(deliveries=dataclasses.replace(report().deliveries, last_ok_at=1001.0))  # 8 per second
    text = comparison(settings, {"one Invoke per batch": slow, "key-ordered": fast})
    assert "relay: 2 containers, relayMaxConcurrentInvocations=3; target: 6 containers" in text
    assert "key-ordered / one Invoke per batch: 4.0x records delivered per second" in text
    assert "0.0x" in comparison(settings, {"a": report(deliveries=Deliveries(0, 0, 0, [], frozenset())), "b": fast})


def test_without_options_or_environment_the_settings_are_the_documented_defaults() -> None:
    settings = parse_args([], env={})
    assert isinstance(settings, SoakSettings) and dict(settings.rates) == {
        name: c.default_rate for name, c in CLASSES.items() if c.default_rate > 0
    }
    assert (
        settings.total,
        settings.faults,
        settings.target_containers,
        settings.relay_timeout,
        settings.drain_timeout,
    ) == (100_000, "default", 3, 8, 2_500)
    assert parse_args(["--total", "3000"], env={}).drain_timeout == 600, "never less than 600 s"
    assert parse_args([], env={"DRAIN_TIMEOUT": "42"}).drain_timeout == 42


def test_the_writer_aggregates_its_share_in_runs_each_key_in_order_and_malformed_records_plain() -> None:
    writer = Writer(FaultInjector({"malformed": 0.1}, seed=3, started_at=0.0), keys=4, aggregated=0.5)
    written = writer.batch(400)
    aggregates = [(key, data) for key, data in written if data.startswith(MAGIC)]
    assert 0 < writer.aggregates == len(aggregates) and {key for key, _ in aggregates} == {AGGREGATE_PARTITION_KEY}
    ids = [rid for key, data in written for rid in record_ids(key, data)]
    assert len(ids) == writer.written == 400, "every record once, an aggregate's user records each"
    assert writer.user_records == sum(len(record_ids(key, data)) for key, data in aggregates) > len(aggregates)
    inside = {rid for key, data in aggregates for rid in record_ids(key, data)}
    assert all(writer.key_of[rid].startswith("aggregated-key-") for rid in inside)
    plain_keys = {writer.key_of[rid] for rid in set(ids) - inside if rid in writer.key_of}
    assert not any(key.startswith("aggregated-key-") for key in plain_keys), "an aggregated key is never written plain"
    assert any(key.startswith(MALFORMED_PREFIX) for key, _ in written), "the malformed records stay plain"
    assert Writer(FaultInjector({}, seed=3, started_at=0.0), keys=4).batch(50)[0][1].startswith(b"{")


def test_the_writer_writes_its_large_share_plain_within_the_sizes_asked_and_keyed_as_any_record() -> None:
    low, high = 1024 * 1024 + 1, 1024 * 1024 + 4096
    writer = Writer(
        FaultInjector({}, seed=5, started_at=0.0), keys=4, aggregated=0.5, large=0.2, large_sizes=(low, high)
    )
    written = writer.batch(200)
    large = [(key, data) for key, data in written if len(data) + len(key) > 1024 * 1024]
    assert 0 < writer.large_records == len(large) < 200
    assert all(low <= len(data) + len(key.encode()) <= high for key, data in large)
    assert all(not data.startswith(MAGIC) and key.startswith("key-") for key, data in large), "plain, a plain key"
    assert all(writer.key_of[json.loads(data)["id"]] == key for key, data in large)
    assert len({len(data) for _, data in large}) > 1, "sizes are drawn, not one size"
    plain = Writer(FaultInjector({}, seed=5, started_at=0.0), keys=4)
    assert max(len(data) for _, data in plain.batch(200)) < 1024 and plain.large_records == 0, "none unless asked"


def test_a_share_outside_0_to_1_is_refused_with_its_option_and_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args([], env={"LARGE": "0.001", "AGGREGATED": "0.2"}).large == 0.001
    for argv, env, named in (([], {"LARGE": "2"}, "--large (LARGE)"), (["--aggregated", "-0.5"], {}, "--aggregated")):
        with pytest.raises(SystemExit) as exited:
            parse_args(argv, env=env)
        assert exited.value.code == 2
        assert f"{named}" in capsys.readouterr().err
