"""One local two-account run per test session: moto, both accounts, the three release binaries
under the runtime emulator, the event source mapping. Tests share it (starting it costs a few
seconds) and each test accounts only for the record ids it produced."""

from __future__ import annotations

import datetime
import json
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from local.harness import LocalRun, RunOptions, release_binaries  # noqa: E402

# Kinesis hash key 0 lands on the first shard: records a test wants in one batch go there.
SHARD_ZERO = "0"


@pytest.fixture(scope="session")
def run():
    work = ROOT / ".demo" / "e2e"
    options = RunOptions(
        binaries=release_binaries(work),
        work_dir=work,
        source_overrides={"producerRecordsPerInvocation": "5"},
        target_overrides={"faultInjection": "true"},
    )
    local_run = LocalRun(options, progress=lambda msg: print(f"[e2e] {msg}", flush=True))
    try:
        local_run.start()
        yield local_run
    finally:
        local_run.stop()


def produced_record(record_id: str | None = None, *, simulate: dict | None = None, padding: str = "",
                    message: str = "from the e2e tests") -> tuple[str, bytes]:
    """A record shaped like the producer's (what the target accepts), as (partition key, data)."""
    record_id = record_id or str(uuid.uuid4())
    body = {"message": message}
    if padding:
        body["padding"] = padding
    if simulate is not None:
        body["simulate"] = simulate
    doc = {
        "id": record_id,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "sequence": 0,
        "producer": "e2e-test",
        "body": body,
    }
    return record_id, json.dumps(doc).encode()


def wait_settled(run: LocalRun, ids: list[str], timeout: float = 60) -> dict:
    """Waits until every id is delivered or dead-lettered (or the timeout), then a quiet moment
    so late duplicates and dead letters are counted too; returns the accounting for `ids`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and not run.ledger.settled(ids):
        time.sleep(0.1)
    run.esm.wait_idle(quiet_s=1.0, timeout=15)
    time.sleep(1.2)  # the dead-letter collector long-polls once a second
    return run.ledger.account(ids)


def assert_nothing_lost(acc: dict) -> None:
    assert acc["unaccounted_ids"] == [], acc
    assert acc["lost"] == 0, acc
    assert acc["delivered"] + acc["dead_lettered"] == acc["produced"], acc
