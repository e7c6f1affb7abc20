"""End to end: the release binaries of producer, relay and target, two accounts in moto, the
schedule and the Kinesis event source mapping played by the harness."""

from __future__ import annotations

import base64
import contextlib
import json
import time

from conftest import SHARD_ZERO, assert_nothing_lost, produced_record, wait_settled

SYNC_LIMIT = 6 * 1024 * 1024


@contextlib.contextmanager
def paused(run):
    """Holds the event source mapping so records written meanwhile arrive in one batch."""
    run.esm.paused.set()
    try:
        yield
    finally:
        run.esm.paused.clear()


def target_lines_for(run, record_id):
    return [l for l in run.ledger.target_lines() if l.get("record_id") == record_id]


def test_happy_path_scheduled_producer_to_target_across_accounts(run):
    ids = []
    for _ in range(10):
        answer = run.tick()
        assert answer.get("records_written") == 5, answer
        assert len(answer["record_ids"]) == 5
        ids.extend(answer["record_ids"])
    acc = wait_settled(run, ids)
    assert_nothing_lost(acc)
    assert acc["produced"] == 50 and acc["delivered"] == 50 and acc["dead_lettered"] == 0, acc
    assert acc["p50_ms"] is not None and acc["p50_ms"] >= 0
    assert not run.ledger.producer_errors
    # Cross-account for real: the target exists only in the target account...
    proof = run.prove_cross_account()
    assert proof["source_credentials_invoke"] == "ResourceNotFoundException", proof
    assert proof["assume_without_external_id"] == "AccessDenied", proof
    # ...and every Invoke that reached it was signed in the target account with credentials
    # other than the relay's own (the AssumeRole result).
    assert proof["target_invokes"] >= 1
    assert proof["target_invokes_by_target_account_assumed_role"] == proof["target_invokes"], proof


def test_malformed_record_goes_to_dead_letter_queue_and_neighbours_are_delivered(run):
    before = [produced_record() for _ in range(3)]
    bad_id = "malformed-" + str(time.time_ns())
    bad = (bad_id, b"this is not a produced record {")
    after = [produced_record() for _ in range(3)]
    with paused(run):
        run.put_records(before + [bad] + after, explicit_hash_key=SHARD_ZERO)
    ids = [pk for pk, _ in before + [bad] + after]
    acc = wait_settled(run, ids)
    assert_nothing_lost(acc)
    assert acc["delivered"] == 6 and acc["rejected"] == 1 and acc["dead_lettered"] == 1, acc
    letters = [m for m in run.ledger.dead_letters if m.get("partition_key") == bad_id]
    assert len(letters) == 1, letters
    letter = letters[0]
    assert letter["kind"] == "rejected_by_target"
    assert letter["reason"], letter
    assert letter["event_source_arn"] == run.stream_arn
    assert base64.b64decode(letter["data_base64"]) == bad[1]
    assert letter["data_bytes"] == len(bad[1])
    assert [l["outcome"] for l in target_lines_for(run, bad_id)] == ["rejected"]


def test_transient_failures_are_retried_and_delivered(run):
    flaky_id, flaky = produced_record(simulate={"retry_times": 2})
    neighbours = [produced_record() for _ in range(4)]
    retries_before = run.esm.stats.retries
    with paused(run):
        run.put_records(neighbours[:2] + [(flaky_id, flaky)] + neighbours[2:], explicit_hash_key=SHARD_ZERO)
    ids = [pk for pk, _ in neighbours] + [flaky_id]
    acc = wait_settled(run, ids)
    assert_nothing_lost(acc)
    assert acc["delivered"] == 5 and acc["dead_lettered"] == 0, acc
    outcomes = [l["outcome"] for l in target_lines_for(run, flaky_id)]
    assert outcomes[:3] == ["retry", "retry", "ok"], outcomes
    # Retried from the checkpoint (the flaky record), twice, by the event source mapping.
    assert run.esm.stats.retries - retries_before == 2


def test_a_record_that_keeps_failing_ends_in_the_on_failure_destination(run):
    poison_id, poison = produced_record(simulate={"function_error": True})
    invocations_before = run.esm.stats.invocations
    with paused(run):
        run.put_records([(poison_id, poison)], explicit_hash_key=SHARD_ZERO)
    acc = wait_settled(run, [poison_id])
    assert_nothing_lost(acc)
    assert acc["delivered"] == 0 and acc["rejected"] == 0 and acc["dead_lettered"] == 1, acc
    records = [m for m in run.ledger.dead_letters if "KinesisBatchInfo" in m
               and poison_id in run.ledger._ids_in_range(m["KinesisBatchInfo"])]
    assert len(records) == 1, records
    info = records[0]["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["shardId"] == "shardId-000000000000", info
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["streamArn"] == run.stream_arn
    assert records[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert records[0]["requestContext"]["functionArn"] == run.arns["relay"]
    # One first attempt plus maximumRetryAttempts retries, from the rendered mapping.
    attempts = run.mapping_settings.maximum_retry_attempts + 1
    assert run.esm.stats.invocations - invocations_before == attempts


def test_a_batch_over_6_mb_is_chunked_under_the_invoke_limit(run):
    # Lambda caps the batch it sends the relay at 6 MB; raise that cap here so the relay itself
    # receives more than one Invoke can carry and must split it.
    run.esm.settings.max_batch_bytes = 16 * 1024 * 1024
    audit_before = len(run.target_invokes())
    try:
        records = [produced_record(padding="x" * 900_000) for _ in range(8)]
        with paused(run):
            run.put_records(records, explicit_hash_key=SHARD_ZERO)
        ids = [pk for pk, _ in records]
        acc = wait_settled(run, ids, timeout=120)
    finally:
        run.esm.settings.max_batch_bytes = 6 * 1024 * 1024
    assert_nothing_lost(acc)
    assert acc["delivered"] == 8, acc
    big = [e for e in run.esm.stats.events if set(e[1]) and e[2] > SYNC_LIMIT]
    assert big, "the relay never received a batch over 6 MB"
    invokes = run.target_invokes()[audit_before:]
    assert len(invokes) >= 2, invokes
    assert all(e["request_bytes"] < SYNC_LIMIT for e in invokes), [e["request_bytes"] for e in invokes]
    assert not [e for e in invokes if e["outcome"] == "request_too_large"]
    assert sum(e["request_bytes"] for e in invokes) > SYNC_LIMIT


def test_a_warm_relay_calls_assume_role_once_across_many_batches(run):
    invocations_before = run.esm.stats.invocations
    ids = []
    for _ in range(12):
        answer = run.tick()
        ids.extend(answer["record_ids"])
        end = time.monotonic() + 30
        while not run.ledger.settled(answer["record_ids"]) and time.monotonic() < end:
            time.sleep(0.05)  # one batch per round: the next tick comes after this one is delivered
    acc = wait_settled(run, ids)
    assert_nothing_lost(acc)
    assert run.esm.stats.invocations - invocations_before >= 12
    assert run.hosts["relay"].starts == 1, "the relay container was restarted"
    # Counted by moto's STS (the launcher's audit), across the whole session.
    assert run.relay_assume_role_calls() == 1


def test_a_retried_batch_counts_a_record_rejected_twice_once(run):
    # The flaky record makes the mapping retry from its checkpoint, so the malformed record after
    # it is rejected (and dead-lettered) again, and its good neighbour delivered again: the
    # ledger counts records, not messages.
    flaky_id, flaky = produced_record(simulate={"retry_times": 1})
    bad_id, bad = produced_record(message="")  # empty body.message: the target rejects it
    good_id, good = produced_record()
    with paused(run):
        run.put_records([(flaky_id, flaky), (bad_id, bad), (good_id, good)], explicit_hash_key=SHARD_ZERO)
    acc = wait_settled(run, [flaky_id, bad_id, good_id])
    assert_nothing_lost(acc)
    assert (acc["delivered"], acc["rejected"], acc["dead_lettered"]) == (2, 1, 1), acc
    letters = [m for m in run.ledger.dead_letters if m.get("partition_key") == bad_id]
    assert len(letters) == 2, "the retry from the checkpoint rejects the record a second time"
    assert [l["outcome"] for l in target_lines_for(run, good_id)] == ["ok", "ok"]
