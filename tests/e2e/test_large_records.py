"""Records larger than Kinesis's default 1 MiB (`streamMaxRecordSizeKib`), on the local run's
stand-ins: the launcher's Kinesis takes records up to its stream's own maximum record size and
no larger, as Kinesis does (moto 5.2.5 refuses any record over 1 MiB), and the event source
mapping never hands a function an event at or over Lambda's payload limit."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.kinesis import models as kinesis_models
from moto.kinesis import responses as kinesis_responses

from local_run.esm import EventSourceMapping, MappingSettings
from local_run.limits import limits
from local_run.runtime_api import InvokeResult

REGION = "eu-west-1"
KIB = 1024


@pytest.fixture
def kinesis(launcher: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(kinesis_responses.KinesisResponse, "create_stream", launcher.create_stream_sized)
    monkeypatch.setattr(kinesis_models.Stream, "to_json_summary", launcher.summary_with_record_size)
    monkeypatch.setattr(kinesis_models.KinesisBackend, "put_records", launcher.put_records_partly_refused)
    monkeypatch.setattr(kinesis_models.KinesisBackend, "put_record", launcher.put_record_serialised)
    with mock_aws():
        yield boto3.client("kinesis", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def refused(call: Any) -> str:
    with pytest.raises(Exception) as raised:
        call()
    return str(raised.value)


def test_a_stream_takes_records_up_to_its_own_maximum_and_no_larger(kinesis: Any) -> None:
    largest = limits().lambda_consumer_max_record_bytes
    kinesis.create_stream(StreamName="large", ShardCount=1, MaxRecordSizeInKiB=largest // KIB)
    kinesis.create_stream(StreamName="default", ShardCount=1)
    summary = kinesis.describe_stream_summary(StreamName="large")["StreamDescriptionSummary"]
    assert summary["MaxRecordSizeInKiB"] == largest // KIB
    default = kinesis.describe_stream_summary(StreamName="default")["StreamDescriptionSummary"]
    assert default["MaxRecordSizeInKiB"] == 1024

    # The partition key counts: "k" is one byte.
    kinesis.put_records(StreamName="large", Records=[{"PartitionKey": "k", "Data": b"x" * (largest - 1)}])
    kinesis.put_record(StreamName="large", PartitionKey="k", Data=b"y" * (largest - 1))
    over = [{"PartitionKey": "k", "Data": b"x" * largest}]
    message = refused(lambda: kinesis.put_records(StreamName="large", Records=over))
    assert f"less than or equal to {largest}" in message, message
    message = refused(lambda: kinesis.put_record(StreamName="large", PartitionKey="k", Data=b"x" * largest))
    assert f"less than or equal to {largest}" in message, message

    kinesis.put_records(StreamName="default", Records=[{"PartitionKey": "k", "Data": b"x" * (1024 * KIB - 1)}])
    message = refused(
        lambda: kinesis.put_records(StreamName="default", Records=[{"PartitionKey": "k", "Data": b"x" * 1024 * KIB}])
    )
    assert "less than or equal to 1048576" in message, message

    shard = kinesis.list_shards(StreamName="large")["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="large", ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    read = kinesis.get_records(ShardIterator=it["ShardIterator"])["Records"]
    assert [len(r["Data"]) for r in read] == [largest - 1, largest - 1]


def test_a_record_size_outside_kinesis_range_is_refused(kinesis: Any) -> None:
    message = refused(lambda: kinesis.create_stream(StreamName="huge", ShardCount=1, MaxRecordSizeInKiB=10241))
    assert "between 1024 and 10240" in message, message


def test_the_mapping_never_invokes_with_an_event_at_the_payload_limit(kinesis: Any) -> None:
    """A stream set to 10 MiB takes a record whose event no invocation can carry: the function
    never sees it, and after its retries the mapping gives it up (here without a destination)."""
    kinesis.create_stream(StreamName="s", ShardCount=1, MaxRecordSizeInKiB=10240)
    small, large = b"s" * 100, b"L" * (5 * 1024 * KIB)
    kinesis.put_records(StreamName="s", Records=[{"PartitionKey": "a", "Data": small}])
    kinesis.put_records(StreamName="s", Records=[{"PartitionKey": "b", "Data": large}])
    kinesis.put_records(StreamName="s", Records=[{"PartitionKey": "c", "Data": small}])
    arn = kinesis.describe_stream_summary(StreamName="s")["StreamDescriptionSummary"]["StreamARN"]
    seen: list[tuple[int, list[str]]] = []  # each invocation's event size and partition keys
    lock = threading.Lock()

    def invoke(payload: bytes) -> InvokeResult:
        keys = [r["kinesis"]["partitionKey"] for r in json.loads(payload)["Records"]]
        with lock:
            seen.append((len(payload), keys))
        return InvokeResult(body=b"null", function_error=None, duration_ms=1.0)

    limit = limits().lambda_sync_payload_limit
    esm = EventSourceMapping(
        kinesis_factory=lambda: kinesis,
        s3_factory=lambda: None,
        stream_name="s",
        stream_arn=arn,
        region=REGION,
        function_arn=f"arn:aws:lambda:{REGION}:111111111111:function:relay",
        function_role_arn="arn:aws:iam::111111111111:role/relay",
        invoke=invoke,
        settings=MappingSettings(
            max_batch_bytes=limit, maximum_retry_attempts=2, retry_base_delay_s=0.001, poll_interval_s=0.01
        ),
        log=lambda _line: None,
    )
    esm.start()
    try:
        deadline = time.monotonic() + 30
        while esm.stats.on_failure_records < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert esm.wait_idle(0.3, 30)
    finally:
        esm.stop()
    assert all(size < limit for size, _ in seen), [size for size, _ in seen]
    assert [key for _, keys in seen for key in keys] == ["a", "c"], "the records around it are delivered"
    assert esm.stats.refused_too_large == 3, "the first try and its 2 retries"
    assert esm.stats.on_failure_records == 1
