"""End to end: the producer's aggregated mode (`producerAggregation=true`, stack config as
`pulumi config set` would set it) in a local run of its own with the real release binaries.

The producer packs each tick's records into KPL aggregates (`shared::kpl`'s encoder), the relay
de-aggregates them (`shared::kpl`'s decoder) and the target gets every record once, under its
own partition key. The aggregates' count comes from the producer's answer and the relay's
summary lines, which must agree, so a producer that wrote plain records fails here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from local_run.functions import release_binaries
from local_run.harness import LocalRun, RunSpec
from local_run.infra_command import ROOT

RECORDS_PER_TICK = 600
TICKS = 3


@pytest.fixture(scope="module")
def run() -> Iterator[LocalRun]:
    work = ROOT / ".demo" / "e2e-producer-aggregation"
    spec = RunSpec(
        binaries=release_binaries(work),
        work_dir=work,
        source_settings={"producerAggregation": "true", "producerRecordsPerInvocation": str(RECORDS_PER_TICK)},
    )
    local_run = LocalRun.start(spec, progress=lambda msg: print(f"[e2e producer-aggregation] {msg}", flush=True))
    try:
        yield local_run
    finally:
        local_run.stop()


def relay_summaries(run: LocalRun) -> list[dict[str, Any]]:
    return [line for line in list(run.hosts["relay"].logs) if line.get("message") == "invocation summary"]


def test_every_record_of_the_aggregates_the_producer_writes_is_delivered_once(run: LocalRun) -> None:
    ids: list[str] = []
    aggregates = 0
    for _ in range(TICKS):
        answer = run.tick()
        assert answer.get("records_written") == RECORDS_PER_TICK, answer
        assert len(answer["record_ids"]) == RECORDS_PER_TICK
        # Several records per Kinesis record: about 230 default records fill 51,200 bytes.
        assert 0 < answer["aggregates_written"] < RECORDS_PER_TICK / 100, answer
        aggregates += answer["aggregates_written"]
        ids.extend(answer["record_ids"])
    assert not run.ledger.producer_errors
    acc = run.settle(ids, timeout=120)
    assert acc.unaccounted_ids == [] and acc.lost == 0, acc
    assert acc.produced == acc.delivered == RECORDS_PER_TICK * TICKS and acc.dead_lettered == 0, acc
    # Each record reached the target once, under its own partition key (the record's id: the
    # target logs the id it read from the record's data, the ledger matched it).
    processed = Counter(line["record_id"] for line in run.ledger.target_lines() if line.get("record_id") in set(ids))
    assert set(processed) == set(ids)
    assert max(processed.values()) == 1, processed.most_common(3)
    # The relay read aggregates, not plain records: exactly the ones the producer wrote, and
    # the records they hold.
    summaries = relay_summaries(run)
    assert sum(s["aggregates"] for s in summaries) == aggregates, summaries
    assert sum(s["user_records"] for s in summaries) == RECORDS_PER_TICK * TICKS, summaries
    assert sum(s["invalid_aggregates"] for s in summaries) == 0, summaries
