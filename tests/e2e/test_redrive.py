"""End to end: `relayctl` lists and redrives the dead letters of a local run, against its moto
endpoint (loopback only), with the source account's administrator credentials (an operator's).

The test has its own run (a fresh dead-letter bucket, so the records other tests leave there on
purpose are not redriven here), with the target's fault injection on, as the session's run has it.

How each cause is fixed, honestly (the redriven records are the very bytes that were dead-lettered;
nothing is rewritten):
- rejected by the target: a record whose `created_at` is just over the target's allowed clock skew
  in the future (a producer whose clock ran ahead). The target rejects it; a few seconds later the
  same record is within the skew, and the target accepts it. The cause (time) went away.
- a poison record among good neighbours: the same request for a function error, in a batch with
  other records; the relay isolates it and dead-letters it alone (`target_function_error`), and the
  same fix lets it through.
- a failed batch: a record asking a target with fault injection on for a function error, so every
  attempt fails and the event source mapping writes its on-failure object with the event. The cause
  is fixed as an operator would: the target stack's `faultInjection` is set to false, the target's
  environment is rendered again from the stack (`infra render`) and its container replaced.
- too large for any Invoke: cannot be produced. The run's stream takes records up to the largest
  an event source mapping can hand the relay (`streamMaxRecordSizeKib` at its maximum, 4,601 KiB),
  and such a record fits one Invoke to the target (the last test sends one); relayctl reads that
  kind exactly as a rejected record (its unit tests read both).

The last test sends a record of that largest size: delivered whole, dead-lettered whole when the
target rejects it, and redriven whole once the cause is gone.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from local_run.envelope import produced_record, produced_record_of_size
from local_run.functions import release_binaries
from local_run.harness import LocalRun, RunSpec
from local_run.infra_command import ROOT
from local_run.ledger import Accounting
from local_run.limits import limits
from local_run.stream import FIRST_SHARD_HASH_KEY
from local_run.template import render

RELAYCTL = ROOT / "target" / "debug" / "relayctl"
# The target's allowed clock skew is 300 s (functions/sample-target/src/handler.rs); a record this far
# ahead is rejected when it arrives within a few seconds, and accepted once it is no longer ahead
# by more than the skew.
AHEAD_S = 306
TARGET_SETTINGS = {"faultInjection": "true"}
# The largest record the stream may take whose event still reaches the relay.
LARGEST_RECORD_BYTES = limits().lambda_consumer_max_record_bytes
SOURCE_SETTINGS = {"streamMaxRecordSizeKib": str(LARGEST_RECORD_BYTES // 1024)}


@pytest.fixture(scope="module")
def run() -> Iterator[LocalRun]:
    if not RELAYCTL.is_file():
        pytest.fail(f"{RELAYCTL} is missing: `make e2e` builds it (cargo build -p relayctl)")
    work = ROOT / ".demo" / "e2e-redrive"
    spec = RunSpec(
        binaries=release_binaries(work),
        work_dir=work,
        source_settings=SOURCE_SETTINGS,
        target_settings=TARGET_SETTINGS,
    )
    local_run = LocalRun.start(spec, progress=lambda msg: print(f"[e2e redrive] {msg}", flush=True))
    try:
        yield local_run
    finally:
        local_run.stop()


def relayctl(run: LocalRun, *args: str) -> str:
    """Runs relayctl with the source account's administrator credentials against moto."""
    admin = run.admin(run.stacks.source_account)
    env = {
        **admin.env(),
        "AWS_REGION": run.aws.region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": run.aws.endpoint,
        "PATH": "/usr/bin:/bin",
    }
    bucket = run.environment.dead_letter_bucket.name
    stream = ["--stream", run.environment.stream.name] if args[0] == "redrive" else []
    done = subprocess.run(
        [str(RELAYCTL), *args, "--bucket", bucket, *stream], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def fix_the_target(run: LocalRun) -> None:
    """`pulumi config set faultInjection false` and a deployment: the target's environment is
    rendered again from the stack and its container replaced."""
    settings = {"externalId": run.spec.external_id, **TARGET_SETTINGS, "faultInjection": "false"}
    template = render("target", run.spec.stack_dir / "Pulumi.target.yaml", settings)
    rendered = template.function_environment("targetFunction", run.environment.refs)
    before = run.functions.template_env["target"]
    assert rendered != before, "faultInjection=false rendered the same environment"
    host = run.hosts["target"]
    host.env = {**host.env, **rendered}  # type: ignore[union-attr]
    host.recycle()


def bucket_keys(run: LocalRun) -> list[str]:
    run.dead_letters.refresh()
    return sorted(run.ledger.dead_letter_objects())


def test_redrive_delivers_every_dead_lettered_record_once_the_cause_is_fixed(run: LocalRun) -> None:
    ahead = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=AHEAD_S)
    skewed_id, skewed = produced_record(created_at=ahead)
    poison_id, poison = produced_record(simulate={"function_error": True})
    # A second poison record among good neighbours: the relay isolates it (target_function_error).
    isolated_id, isolated = produced_record(simulate={"function_error": True})
    neighbours = [produced_record() for _ in range(3)]
    for batch in (
        [(skewed_id, skewed)],
        [(poison_id, poison)],
        [neighbours[0], (isolated_id, isolated), *neighbours[1:]],
    ):
        with run.esm.paused_polling():
            run.put_records(batch, explicit_hash_key=FIRST_SHARD_HASH_KEY)
        run.settle([pk for pk, _ in batch])
    ids = [skewed_id, poison_id, isolated_id, *(pk for pk, _ in neighbours)]
    acc = run.settle(ids)
    assert acc.delivered == 3 and acc.rejected == 1 and acc.poison == 1 and acc.dead_lettered == 3, acc
    assert acc.dead_letter_objects == 3 and acc.on_failure_batches == 1, acc

    listing = relayctl(run, "list")
    assert "rejected_by_target    1 objects, 1 records" in listing, listing
    assert "failed_batch          1 objects, 1 records" in listing, listing
    assert "target_function_error 1 objects, 1 records" in listing, listing
    assert "SimulatedFunctionError" in listing, listing
    assert "in the future" in listing and "RetryAttemptsExhausted" in listing, listing
    assert "not redriven by relayctl" in listing and "failed schedule ticks" in listing, listing

    # A dry run says what it would do and changes nothing.
    keys = bucket_keys(run)
    target_lines = len(run.ledger.target_lines())
    plan = relayctl(run, "redrive", "--dry-run")
    assert "dry run: 3 objects, 3 records; nothing was written or moved" in plan, plan
    time.sleep(2)  # what a write would have caused would show by now
    assert bucket_keys(run) == keys
    assert len(run.ledger.target_lines()) == target_lines

    fix_the_target(run)
    # The skewed record is accepted once it is no longer ahead by more than the allowed skew.
    wait_s = (ahead - datetime.timedelta(seconds=AHEAD_S - 6) - datetime.datetime.now(datetime.UTC)).total_seconds()
    time.sleep(max(0.0, wait_s))

    summary = relayctl(run, "redrive")
    assert "redriven: 3 objects, 3 records written; 0 left in place without records; 0 failed" in summary, summary
    acc = run.settle(ids)
    assert_all_delivered(acc)
    assert bucket_keys(run) == [], "every dead letter moved under redriven/"

    # Run again after completion: nothing is left to redrive, nothing is written twice.
    again = relayctl(run, "redrive")
    assert "redriven: 0 objects, 0 records written" in again, again
    assert "no dead letters" in relayctl(run, "list")
    acc = run.settle(ids)
    assert_all_delivered(acc)


def assert_all_delivered(acc: Accounting) -> None:
    assert acc.unaccounted_ids == [] and acc.lost == 0, acc
    assert acc.delivered == acc.produced == 6 and acc.dead_lettered == 0, acc
    assert acc.dead_letter_objects == 0 and acc.delivered_and_dead_lettered == [], acc


def largest_record(created_at: datetime.datetime) -> tuple[str, bytes]:
    """A produced record of exactly the largest size the stream takes, partition key included."""
    pk, data = produced_record_of_size(LARGEST_RECORD_BYTES, created_at=created_at)
    assert len(data) + len(pk) == LARGEST_RECORD_BYTES
    return pk, data


def test_the_largest_record_is_delivered_dead_lettered_and_redriven_whole(run: LocalRun) -> None:
    """4,601 KiB, data and partition key: the target parses it whole (its JSON ends with the last
    byte), the dead letter keeps every byte, and redrive writes those bytes back to the stream."""
    assert bucket_keys(run) == [], "the test before left no dead letter"
    on_time = largest_record(datetime.datetime.now(datetime.UTC))
    ahead = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=AHEAD_S)
    skewed = largest_record(ahead)
    run.put_records([on_time])
    run.put_records([skewed])
    acc = run.settle([on_time[0], skewed[0]], timeout=120)
    assert acc.delivered == 1 and acc.rejected == 1 and acc.dead_lettered == 1, acc
    assert run.esm.stats.refused_too_large == 0

    (letter,) = run.ledger.dead_letter_objects().values()
    assert letter["kind"] == "rejected_by_target" and letter["partition_key"] == skewed[0], {
        k: v for k, v in letter.items() if k != "data_base64"
    }
    kept = base64.b64decode(letter["data_base64"])
    assert (
        letter["data_bytes"] == len(skewed[1]) and hashlib.sha256(kept).digest() == hashlib.sha256(skewed[1]).digest()
    )
    assert json.loads(kept)["id"] == skewed[0]

    wait_s = (ahead - datetime.timedelta(seconds=AHEAD_S - 6) - datetime.datetime.now(datetime.UTC)).total_seconds()
    time.sleep(max(0.0, wait_s))
    summary = relayctl(run, "redrive")
    assert "redriven: 1 objects, 1 records written; 0 left in place without records; 0 failed" in summary, summary
    acc = run.settle([on_time[0], skewed[0]], timeout=120)
    assert acc.unaccounted_ids == [] and acc.lost == 0, acc
    assert acc.delivered == acc.produced == 2 and acc.dead_lettered == 0, acc
    assert bucket_keys(run) == []
