"""End to end: KPL-aggregated records, built by AWS's `aws-kinesis-agg` (an implementation
independent of ours), written to the stream of a local run with the real release binaries.

- an aggregate of user records on three user partition keys (one Kinesis partition key for all)
  is delivered as its user records, each key's records in the order they were aggregated;
- an aggregate whose MD5 does not match is a plain record: the sample target rejects its bytes
  and the relay dead-letters them whole.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from aws_kinesis_agg.aggregator import AggRecord

from local_run.envelope import produced_record
from local_run.functions import release_binaries
from local_run.harness import LocalRun, RunSpec
from local_run.infra_command import ROOT
from local_run.stream import FIRST_SHARD_HASH_KEY


@pytest.fixture(scope="module")
def run() -> Iterator[LocalRun]:
    work = ROOT / ".demo" / "e2e-kpl"
    spec = RunSpec(binaries=release_binaries(work), work_dir=work)
    local_run = LocalRun.start(spec, progress=lambda msg: print(f"[e2e kpl] {msg}", flush=True))
    try:
        yield local_run
    finally:
        local_run.stop()


def aggregate(records: list[tuple[str, bytes]]) -> bytes:
    built = AggRecord()
    for partition_key, data in records:
        assert built.add_user_record(partition_key, data), "fits one aggregate"
    _, _, body = built.get_contents()
    return bytes(body)


def test_an_aggregate_is_delivered_as_its_user_records_in_key_order(run: LocalRun) -> None:
    user_keys = ["user-a", "user-b", "user-c"]
    records = [(user_keys[n % 3], produced_record(sequence=n)) for n in range(12)]
    ids = [rid for _, (rid, _) in records]
    body = aggregate([(key, data) for key, (_, data) in records])
    with run.esm.paused_polling():
        run.stream.put_records([("aggregate-1", body)], FIRST_SHARD_HASH_KEY)
        run.ledger.add_produced(ids)
    acc = run.settle(ids)
    assert acc.delivered == 12 and acc.dead_lettered == 0 and acc.lost == 0, acc
    # Each user key's records reached the target in the order they were aggregated.
    processed = [line["record_id"] for line in run.ledger.target_lines() if line.get("record_id") in ids]
    for key in user_keys:
        expected = [rid for k, (rid, _) in records if k == key]
        seen = [rid for rid in processed if rid in expected]
        assert list(dict.fromkeys(seen)) == expected, (key, seen)


def test_a_corrupt_aggregate_is_a_plain_record_and_dead_lettered_whole(run: LocalRun) -> None:
    body = bytearray(aggregate([("user-a", produced_record()[1]), ("user-b", produced_record()[1])]))
    body[-1] ^= 0x01  # the MD5 no longer matches
    with run.esm.paused_polling():
        run.put_records([("corrupt-1", bytes(body))], FIRST_SHARD_HASH_KEY)
    acc = run.settle(["corrupt-1"])
    assert acc.rejected == 1 and acc.delivered == 0, acc
    letters = [m for m in run.ledger.dead_letter_objects().values() if m.get("partition_key") == "corrupt-1"]
    assert len(letters) == 1, letters
    assert base64.b64decode(letters[0]["data_base64"]) == bytes(body)
    assert "sub_sequence_number" not in letters[0]
