"""End to end: the release binaries of producer, relay and target, two accounts in moto, the
schedule and the Kinesis event source mapping played by the harness.

The run is shared by the whole session (tests/e2e/conftest.py): each test produces its own
record ids, measures counters as deltas within itself, and restores what it changes."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from local_run import envelope
from local_run.dead_letters import layout
from local_run.envelope import DeadLetterKind, produced_record
from local_run.functions import release_binaries
from local_run.harness import DEMO_EXTERNAL_ID, LocalRun, RunSpec
from local_run.infra_command import ROOT
from local_run.ledger import Accounting, on_failure_ids
from local_run.metrics import names, totals
from local_run.runtime_api import FunctionHost
from local_run.stream import FIRST_SHARD_HASH_KEY
from local_run.template import render


def assert_nothing_lost(acc: Accounting) -> None:
    assert acc.unaccounted_ids == [], acc
    assert acc.lost == 0, acc
    assert acc.delivered + acc.dead_lettered == acc.produced, acc


def target_lines_for(run: LocalRun, record_id: str) -> list[dict[str, Any]]:
    return [line for line in run.ledger.target_lines() if line.get("record_id") == record_id]


def dead_letters_of(run: LocalRun, record_id: str) -> list[dict[str, Any]]:
    return [m for m in run.ledger.dead_letters() if m.get("partition_key") == record_id]


def relay_lines_for(run: LocalRun, message: str, record_id: str, count: int) -> list[dict[str, Any]]:
    """The relay's `count` lines with `message` about `record_id`. Its output is read as it comes,
    so a line may arrive just after what it reports is visible elsewhere: it is waited for."""

    def lines() -> list[dict[str, Any]]:
        logs = list(run.hosts["relay"].logs)
        return [line for line in logs if line.get("message") == message and line.get("record_id") == record_id]

    end = time.monotonic() + 10
    while len(lines()) < count and time.monotonic() < end:
        time.sleep(0.05)
    found = lines()
    assert len(found) == count, found
    return found


def test_happy_path_scheduled_producer_to_target_across_accounts(run: LocalRun) -> None:
    invokes_before = run.prove_cross_account().target_invokes
    logs_before = {f: len(host.logs) for f, host in run.hosts.items()}
    started = time.monotonic()
    ids = []
    for _ in range(10):
        answer = run.tick()
        assert answer.get("records_written") == 5, answer
        assert len(answer["record_ids"]) == 5
        ids.extend(answer["record_ids"])
    acc = run.settle(ids)
    elapsed_ms = (time.monotonic() - started) * 1000
    assert_nothing_lost(acc)
    assert acc.produced == 50 and acc.delivered == 50 and acc.dead_lettered == 0, acc
    # The target measured each record from its creation, within this test's own time.
    assert acc.p50_ms is not None and acc.p99_ms is not None, acc
    assert 0 < acc.p50_ms <= acc.p99_ms <= elapsed_ms, (acc.p50_ms, acc.p99_ms, elapsed_ms)
    assert not run.ledger.producer_errors
    # Cross-account for real: the target exists only in the target account...
    proof = run.prove_cross_account()
    assert proof.source_credentials_invoke == "ResourceNotFoundException", proof
    assert proof.assume_without_external_id == "AccessDenied", proof
    # ...and every Invoke that reached it was signed in the target account with credentials
    # other than the relay's own (the AssumeRole result).
    assert proof.target_invokes > invokes_before
    assert proof.target_invokes_by_target_account_assumed_role == proof.target_invokes, proof
    # Each function's EMF lines count exactly these 50 records (nothing else flows meanwhile).
    n = names()
    expected = {
        "producer": {n.producer_records_written: 50},
        "relay": {n.relay_records_received: 50, n.relay_records_delivered: 50, n.relay_records_dead_lettered: 0},
        "target": {n.target_records_ok: 50, n.target_duplicates: 0},
    }
    deadline = time.monotonic() + 10
    while True:  # a line printed just now may still be on its way from the process's stdout
        counted = {f: totals(run.hosts[f].logs[logs_before[f] :]) for f in expected}
        seen = {f: {name: counted[f].get(name) for name in want} for f, want in expected.items()}
        if seen == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert seen == expected


def test_malformed_record_goes_to_dead_letter_bucket_and_neighbours_are_delivered(run: LocalRun) -> None:
    before = [produced_record() for _ in range(3)]
    bad_id = "malformed-" + str(time.time_ns())
    bad = (bad_id, b"this is not a produced record {")
    after = [produced_record() for _ in range(3)]
    with run.esm.paused_polling():
        sequence_numbers = run.put_records([*before, bad, *after], explicit_hash_key=FIRST_SHARD_HASH_KEY)
    ids = [pk for pk, _ in [*before, bad, *after]]
    acc = run.settle(ids)
    assert_nothing_lost(acc)
    assert acc.delivered == 6 and acc.rejected == 1 and acc.dead_lettered == 1, acc
    letters = dead_letters_of(run, bad_id)
    assert len(letters) == 1, letters
    letter = letters[0]
    assert letter["kind"] == DeadLetterKind.REJECTED_BY_TARGET
    assert letter["reason"], letter
    assert letter["event_source_arn"] == run.environment.stream.arn
    assert base64.b64decode(letter["data_base64"]) == bad[1]
    assert letter["data_bytes"] == len(bad[1])
    assert [line["outcome"] for line in target_lines_for(run, bad_id)] == ["rejected"]
    keys = [k for k, m in run.ledger.dead_letter_objects().items() if m.get("partition_key") == bad_id]
    assert len(keys) == 1 and keys[0].startswith(f"{layout().relay_prefix}rejected_by_target/"), keys
    assert acc.dead_letter_objects == 1, acc
    # One correlation id, the record's Kinesis event id, joins its dead letter, the target's line
    # about it and the relay's; the letter names the Invoke the target logged, and the relay's batch.
    event_id = f"{run.environment.stream.shards[0]}:{sequence_numbers[len(before)]}"
    (target_line,) = target_lines_for(run, bad_id)
    (relay_line,) = relay_lines_for(run, "record written to the dead-letter bucket", bad_id, 1)
    assert letter["event_id"] == target_line["event_id"] == relay_line["event_id"] == event_id
    assert letter["delivery_id"] == target_line["delivery_id"] == relay_line["delivery_id"], letter
    assert letter["batch_id"] == relay_line["batch_id"], letter


def test_a_rejected_record_over_256_kib_keeps_all_its_data(run: LocalRun) -> None:
    # SQS capped a dead letter at 256 KiB; the bucket keeps the whole record.
    big_id = "big-malformed-" + str(time.time_ns())
    data = b"not a produced record " + b"x" * 600_000
    with run.esm.paused_polling():
        run.put_records([(big_id, data)], explicit_hash_key=FIRST_SHARD_HASH_KEY)
    acc = run.settle([big_id])
    assert_nothing_lost(acc)
    assert acc.rejected == 1 and acc.dead_lettered == 1, acc
    (letter,) = dead_letters_of(run, big_id)
    assert base64.b64decode(letter["data_base64"]) == data
    assert letter["data_bytes"] == len(data)


def test_transient_failures_are_retried_and_delivered(run: LocalRun) -> None:
    flaky_id, flaky = produced_record(simulate={"retry_times": 2})
    neighbours = [produced_record() for _ in range(4)]
    retries_before = run.esm.stats.retries
    with run.esm.paused_polling():
        run.put_records([*neighbours[:2], (flaky_id, flaky), *neighbours[2:]], explicit_hash_key=FIRST_SHARD_HASH_KEY)
    ids = [pk for pk, _ in neighbours] + [flaky_id]
    acc = run.settle(ids)
    assert_nothing_lost(acc)
    assert acc.delivered == 5 and acc.dead_lettered == 0, acc
    outcomes = [line["outcome"] for line in target_lines_for(run, flaky_id)]
    assert outcomes[:3] == ["retry", "retry", "ok"], outcomes
    # Retried from the checkpoint (the flaky record), twice, by the event source mapping.
    assert run.esm.stats.retries - retries_before == 2


def test_a_record_that_keeps_failing_ends_in_the_on_failure_destination(run: LocalRun) -> None:
    poison_id, poison = produced_record(simulate={"function_error": True})
    invocations_before = run.esm.stats.invocations
    with run.esm.paused_polling():
        run.put_records([(poison_id, poison)], explicit_hash_key=FIRST_SHARD_HASH_KEY)
    acc = run.settle([poison_id])
    assert_nothing_lost(acc)
    assert acc.delivered == 0 and acc.rejected == 0 and acc.dead_lettered == 1, acc
    found = {k: m for k, m in run.ledger.dead_letter_objects().items() if "KinesisBatchInfo" in m}
    found = {k: m for k, m in found.items() if poison_id in on_failure_ids(m)}
    assert len(found) == 1, found
    ((key, record),) = found.items()
    records = [record]
    # AWS's documented key: aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<UUID>
    shard = run.environment.stream.shards[0]
    assert re.fullmatch(
        re.escape(f"{layout().mapping_prefix}{run.esm.uuid}/{shard}/")
        + r"\d{4}/\d{2}/\d{2}/\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}-[0-9a-f-]{36}",
        key,
    ), key
    # The whole event is in the object: the record's data survives the stream's retention.
    (event_record,) = json.loads(record["payload"])["Records"]
    assert base64.b64decode(event_record["kinesis"]["data"]) == poison
    info = records[0]["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["shardId"] == run.environment.stream.shards[0], info
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["streamArn"] == run.environment.stream.arn
    assert records[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert records[0]["requestContext"]["functionArn"] == run.stacks.function_arns["relay"]
    # One first attempt plus maximumRetryAttempts retries, from the rendered mapping.
    attempts = run.esm.settings.maximum_retry_attempts + 1
    assert run.esm.stats.invocations - invocations_before == attempts
    # The relay's line about each failed attempt names the record by the event id Lambda's
    # object keeps for it.
    failed = relay_lines_for(
        run, "record reported as failed; the event source mapping will retry it", poison_id, attempts
    )
    assert {line["event_id"] for line in failed} == {event_record["eventID"]}, failed


def test_a_poison_record_is_isolated_and_its_neighbours_are_delivered(run: LocalRun) -> None:
    """The target fails the whole envelope (a function error) for one record in it: the relay
    halves the envelope until that record is alone, delivers the rest, and dead-letters the poison
    record with the target's error, its data and its event id; nothing goes to the mapping's
    on-failure destination and the shard moves on."""
    before = [produced_record() for _ in range(5)]
    poison_id, poison = produced_record(simulate={"function_error": True})
    after = [produced_record() for _ in range(4)]
    records = [*before, (poison_id, poison), *after]
    metrics_before = totals(list(run.hosts["relay"].logs))
    on_failure_before = run.esm.stats.on_failure_batches
    with run.esm.paused_polling():
        sequence_numbers = run.put_records(records, explicit_hash_key=FIRST_SHARD_HASH_KEY)
    ids = [pk for pk, _ in records]
    acc = run.settle(ids)
    assert_nothing_lost(acc)
    assert acc.delivered == 9 and acc.poison == 1 and acc.dead_lettered == 1 and acc.rejected == 0, acc
    assert acc.on_failure_batches == 0 and run.esm.stats.on_failure_batches == on_failure_before, acc
    (letter,) = dead_letters_of(run, poison_id)
    assert letter["kind"] == DeadLetterKind.TARGET_FUNCTION_ERROR, letter
    assert "SimulatedFunctionError" in letter["reason"], letter
    assert base64.b64decode(letter["data_base64"]) == poison
    assert letter["event_id"] == f"{run.environment.stream.shards[0]}:{sequence_numbers[len(before)]}"
    keys = [k for k, m in run.ledger.dead_letter_objects().items() if m.get("partition_key") == poison_id]
    assert len(keys) == 1 and keys[0].startswith(f"{layout().relay_prefix}target_function_error/"), keys
    # Each good record reached the target and was answered ok once it was out of the poison's envelope.
    for pk, _ in [*before, *after]:
        assert "ok" in [line["outcome"] for line in target_lines_for(run, pk)], pk
    # Ten records, one poison: halves of 5, then of 3 (or 2), down to the record alone.
    metrics = totals(list(run.hosts["relay"].logs))
    split = metrics.get(names().relay_poison_split_invocations, 0) - metrics_before.get(
        names().relay_poison_split_invocations, 0
    )
    assert 2 <= split <= 2 * 4, split


def test_a_batch_over_6_mb_is_chunked_under_the_invoke_limit(run: LocalRun) -> None:
    limit = run.limits.lambda_sync_payload_limit
    records = [produced_record(padding="x" * 900_000) for _ in range(8)]
    audit_before = len(run.target_invokes())
    events_before = len(run.esm.stats.events)
    # Lambda caps the batch it sends the relay at 6 MB; raise that cap for this test only so
    # the relay itself receives more than one Invoke can carry and must split it.
    with run.esm.settings_changed(max_batch_bytes=3 * limit):
        with run.esm.paused_polling():
            run.put_records(records, explicit_hash_key=FIRST_SHARD_HASH_KEY)
        acc = run.settle([pk for pk, _ in records], timeout=120)
    assert run.esm.settings.max_batch_bytes == limit
    assert_nothing_lost(acc)
    assert acc.delivered == 8, acc
    big = [e for e in run.esm.stats.events[events_before:] if e[2] > limit]
    assert big, "the relay never received a batch over 6 MB"
    invokes = run.target_invokes()[audit_before:]
    assert len(invokes) >= 2, invokes
    assert all(e["request_bytes"] < limit for e in invokes), [e["request_bytes"] for e in invokes]
    assert not [e for e in invokes if e["outcome"] == "request_too_large"]
    assert sum(e["request_bytes"] for e in invokes) > limit


def test_a_warm_relay_calls_assume_role_once_across_many_batches(run: LocalRun) -> None:
    relay = run.hosts["relay"]
    # A fresh relay container, whatever the tests before this one did: nothing cached.
    relay.recycle()
    starts_before = relay.starts
    audit_from = len(run.moto.audit())
    invocations_before = run.esm.stats.invocations
    ids = []
    for _ in range(12):
        answer = run.tick()
        ids.extend(answer["record_ids"])
        end = time.monotonic() + 30
        while not run.ledger.settled(answer["record_ids"]) and time.monotonic() < end:
            time.sleep(0.05)  # one batch per round: the next tick comes after this one is delivered
    acc = run.settle(ids)
    assert_nothing_lost(acc)
    assert run.esm.stats.invocations - invocations_before >= 12
    assert relay.starts == starts_before, "the relay container was restarted"
    # Counted by moto's STS (the launcher's audit): one call for this container's life.
    assert run.relay_assume_role_calls(since=audit_from) == 1


def test_a_retried_batch_counts_a_record_rejected_twice_once(run: LocalRun) -> None:
    # The flaky record makes the mapping retry from its checkpoint, so the malformed record after
    # it is rejected (and dead-lettered) again, and its good neighbour delivered again: the
    # ledger counts records, not writes.
    flaky_id, flaky = produced_record(simulate={"retry_times": 1})
    bad_id, bad = produced_record(message="")  # empty body.message: the target rejects it
    good_id, good = produced_record()
    with run.esm.paused_polling():
        run.put_records([(flaky_id, flaky), (bad_id, bad), (good_id, good)], explicit_hash_key=FIRST_SHARD_HASH_KEY)
    acc = run.settle([flaky_id, bad_id, good_id])
    assert_nothing_lost(acc)
    assert (acc.delivered, acc.rejected, acc.dead_lettered) == (2, 1, 1), acc
    # The retry from the checkpoint rejects the record a second time; its dead letter's key is
    # the record's own, so the second write replaces the first object instead of adding one.
    assert len(dead_letters_of(run, bad_id)) == 1
    assert [line["outcome"] for line in target_lines_for(run, bad_id)] == ["rejected", "rejected"]
    assert [line["outcome"] for line in target_lines_for(run, good_id)] == ["ok", "ok"]


def test_the_target_logs_at_the_level_its_stack_sets(tmp_path: Path) -> None:
    """The stack's `logLevel` reaches the real binary as Lambda passes it, in
    `AWS_LAMBDA_LOG_LEVEL` from the function's `loggingConfig`: at WARN the target's INFO lines
    are gone and its warning is not. (The warning: a record asks for a simulated retry while the
    target remembers no deliveries, `targetDedupCapacity` 0.)"""
    record_id, data = produced_record(simulate={"retry_times": 1})
    record = envelope.relayed_record(
        sequence_number="1", partition_key=record_id, event_id="shardId-000000000000:1", data=data
    )
    command = release_binaries(tmp_path)["target"]
    for level in ("INFO", "WARN"):
        # No idempotency store: this target runs alone, without moto (and its table).
        settings = {
            "externalId": DEMO_EXTERNAL_ID,
            "faultInjection": "true",
            "targetDedupCapacity": "0",
            "idempotencyStore": "false",
        }
        template = render("target", ROOT / "Pulumi.target.yaml", {**settings, "logLevel": level})
        lambda_env = template.lambda_logging_environment("targetFunction")
        assert lambda_env == {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": level}
        env = {
            **template.function_environment("targetFunction", {}),
            **lambda_env,
            "AWS_LAMBDA_FUNCTION_NAME": "target",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "PATH": "/usr/bin:/bin",
        }
        host = FunctionHost(f"target-{level}", command, arn="arn:x", env=env)
        try:
            host.start()
            # Two invocations: the output is read in order, so once the second one's warning is
            # in, every line of the first one is too.
            for _ in range(2):
                assert host.invoke(envelope.delivery_request([record])).function_error is None
            end = time.monotonic() + 10
            while len([line for line in list(host.logs) if line.get("level") == "WARN" and "_aws" not in line]) < 2:
                assert time.monotonic() < end, host.logs
                time.sleep(0.05)
            lines = list(host.logs)
        finally:
            host.stop()
        levels = {line["level"] for line in lines if "_aws" not in line}
        assert levels == ({"INFO", "WARN"} if level == "INFO" else {"WARN"}), (level, levels)
        # A metrics line carries a level the filter keeps: INFO, or the function's own above it
        # (at least the first invocation's line is in by now).
        metric_levels = {line["level"] for line in lines if "_aws" in line}
        assert metric_levels == {level}, (level, metric_levels)


@pytest.mark.parametrize("level", ["WARN", "ERROR"])
def test_the_metrics_the_alarms_read_arrive_at_every_log_level(level: str, tmp_path: Path) -> None:
    """Both stacks at `logLevel` WARN, then ERROR (stack config, as `pulumi config set` would),
    with Lambda's log-level filtering applied to every function's output: the INFO lines are
    gone, and every EMF metric line still arrives, so the relay's RecordsDeadLettered (what the
    dead-letter alarm reads), its other counts and the target's and producer's reach CloudWatch."""
    spec = RunSpec(
        binaries=release_binaries(tmp_path),
        work_dir=tmp_path,
        source_settings={"producerRecordsPerInvocation": "5", "logLevel": level},
        target_settings={"faultInjection": "true", "logLevel": level},
    )
    run = LocalRun.start(spec, progress=lambda msg: print(f"[{level}] {msg}", flush=True))
    try:
        n = names()
        answer = run.tick()
        assert len(answer["record_ids"]) == 5, answer
        bad_id, bad = produced_record(message="")  # the target rejects it: the relay dead-letters it
        run.put_records([(bad_id, bad)])

        def metric(function: str, name: str) -> float:
            return totals(list(run.hosts[function].logs)).get(name, 0)

        end = time.monotonic() + 60
        while metric("relay", n.relay_records_delivered) + metric("relay", n.relay_records_dead_lettered) < 6:
            assert time.monotonic() < end, list(run.hosts["relay"].logs)
            time.sleep(0.1)
        run.esm.wait_idle(quiet_s=1.0, timeout=15)
        assert metric("producer", n.producer_records_written) == 5
        assert metric("relay", n.relay_records_received) == 6
        assert (metric("relay", n.relay_records_delivered), metric("relay", n.relay_records_dead_lettered)) == (5, 1)
        assert metric("target", n.target_records_ok) == 5
        assert metric("relay", n.relay_records_deadline_deferred) == 0
        # One metrics line per relay invocation: none was dropped.
        relay_lines = [line for line in list(run.hosts["relay"].logs) if "_aws" in line]
        assert len(relay_lines) == run.esm.stats.invocations > 0
        # The dead letter the metric counts is in the bucket.
        run.dead_letters.refresh()
        assert [m["kind"] for m in run.ledger.dead_letters() if m.get("partition_key") == bad_id] == [
            DeadLetterKind.REJECTED_BY_TARGET
        ]
        # Every line kept is at the level or above (the functions log at their level, and
        # Lambda's filter drops what would read below it): no `record processed` line is left.
        kept = {"WARN", "ERROR", "FATAL"} if level == "WARN" else {"ERROR", "FATAL"}
        for function in ("producer", "relay", "target"):
            levels = {line.get("level") for line in list(run.hosts[function].logs)}
            assert levels <= kept, (function, levels)
        assert run.ledger.target_lines() == []
    finally:
        run.stop()


def test_a_relay_that_cannot_start_says_why_and_its_invocation_fails_at_once(tmp_path: Path) -> None:
    """A configuration error at start-up: a FATAL line that passes any log level (ERROR here)
    names the setting, and the invocation waiting for the process fails at once with
    Runtime.ExitError, as Lambda answers it, not at the timeout."""
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": "relay",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "ERROR",
        "AWS_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PATH": "/usr/bin:/bin",
    }
    host = FunctionHost("relay", release_binaries(tmp_path)["relay"], arn="arn:x", env=env, timeout_s=20)
    try:
        started = time.monotonic()
        result = host.invoke({"Records": []})
        assert time.monotonic() - started < 10, "answered at the timeout"
        assert result.function_error == "Unhandled"
        assert result.json()["errorType"] == "Runtime.ExitError", result.body
        assert host.wait_for_log(lambda line: line.get("level") == "FATAL", timeout=5), host.logs
        (line,) = host.logs
        assert line["message"] == "relay: configuration error; the function cannot start", line
        assert line["error"].startswith("environment variable TARGET_ROLE_ARN is not set"), line
    finally:
        host.stop()


def test_an_event_the_relay_cannot_read_fails_with_its_own_error_type(run: LocalRun) -> None:
    relay = run.hosts["relay"]
    result = relay.invoke({"Records": [{"kinesis": {"data": "not base64!", "approximateArrivalTimestamp": 1}}]})
    assert result.function_error == "Unhandled"
    error = result.json()
    assert error["errorType"] == "UnreadableEvent", error
    assert error["errorMessage"].startswith(
        "the event is not a Kinesis batch the relay can read: Records[0]: record data is not base64"
    ), error


def test_the_target_finds_its_idempotency_table_in_its_own_account(run: LocalRun) -> None:
    """The example target stack declares the idempotency table: the local run creates it in the
    target account as the template declares it, and the target's process gets its name and
    reaches it with its own execution role's credentials (the SDK's endpoint is moto)."""
    declared = run.stacks.target.properties("idempotencyTable")
    name = declared["name"]
    assert run.environment.tables == {"idempotencyTable": name}
    env = run.functions.template_env["target"]
    assert env["IDEMPOTENCY_TABLE"] == name
    assert (
        env["IDEMPOTENCY_TTL_HOURS"]
        == run.stacks.target.properties("targetFunction")["environment"]["variables"]["IDEMPOTENCY_TTL_HOURS"]
    )
    dynamodb = run.aws.client("dynamodb", run.functions.execution_credentials["target"])
    table = dynamodb.describe_table(TableName=name)["Table"]
    assert table["TableArn"] == f"arn:aws:dynamodb:{run.stacks.region}:{run.stacks.target_account}:table/{name}"
    assert table["KeySchema"] == [{"AttributeName": declared["hashKey"], "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == declared["billingMode"]
    assert table["DeletionProtectionEnabled"] == declared["deletionProtectionEnabled"]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", declared["ttl"]["attributeName"])
    # The source account has no such table: the name resolves in the target account only.
    source = run.aws.client("dynamodb", run.environment.admins[run.stacks.source_account])
    assert name not in source.list_tables()["TableNames"]
