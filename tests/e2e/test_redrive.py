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
- too large for any Invoke: not produced here. The stack sets the relay's limit to the 6 MB Invoke
  limit (not a stack config key) and the stream takes records of at most 1 MiB, so the local run
  cannot make one without overriding a relay variable it would have to name again here; relayctl
  reads that kind exactly as a rejected record (its unit tests read both).
"""

from __future__ import annotations

import datetime
import subprocess
import time
from collections.abc import Iterator

import pytest

from local_run.envelope import produced_record
from local_run.functions import release_binaries
from local_run.harness import LocalRun, RunSpec
from local_run.infra_command import ROOT
from local_run.ledger import Accounting
from local_run.stream import FIRST_SHARD_HASH_KEY
from local_run.template import render

RELAYCTL = ROOT / "target" / "debug" / "relayctl"
# The target's allowed clock skew is 300 s (functions/sample-target/src/handler.rs); a record this far
# ahead is rejected when it arrives within a few seconds, and accepted once it is no longer ahead
# by more than the skew.
AHEAD_S = 306
TARGET_SETTINGS = {"faultInjection": "true"}


@pytest.fixture(scope="module")
def run() -> Iterator[LocalRun]:
    if not RELAYCTL.is_file():
        pytest.fail(f"{RELAYCTL} is missing: `make e2e` builds it (cargo build -p relayctl)")
    work = ROOT / ".demo" / "e2e-redrive"
    spec = RunSpec(binaries=release_binaries(work), work_dir=work, target_settings=TARGET_SETTINGS)
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
