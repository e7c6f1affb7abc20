"""Test vectors of the KPL aggregation format, built with an independent implementation: AWS's
`aws-kinesis-agg` (PyPI, pinned in tools/requirements.txt, used only here).

Each vector is a Kinesis record's bytes and what the relay must make of them: the user records
(partition key, explicit hash key, data) of an aggregate, `plain` (an ordinary record), or
`invalid` (a digest that matches over content that cannot be read). The Rust decoder's unit
tests (`functions/shared/src/kpl.rs`) read the committed file; `test_kpl_vectors.py` builds the
vectors again and fails if they differ from it.

    python tests/vectors/kpl_vectors.py   # rewrites tests/vectors/kpl/vectors.json
"""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import aws_kinesis_agg
from aws_kinesis_agg import aggregator
from aws_kinesis_agg.deaggregator import deaggregate_records

# The library's generated module imports its sibling `config_pb2` by a bare name, which resolves
# only once `aggregator` has put the package's folder on sys.path: take it from there.
messages_pb2 = aggregator.messages_pb2
AggRecord = aggregator.AggRecord

VECTORS = pathlib.Path(__file__).parent / "kpl" / "vectors.json"

# (partition key, explicit hash key or None, data)
UserRecord = tuple[str, str | None, bytes]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pattern(size: int, seed: int) -> bytes:
    """Deterministic bytes of every value (not only text)."""
    return bytes((i * 31 + seed) % 256 for i in range(size))


def _aggregate(records: Sequence[UserRecord]) -> bytes:
    aggregate = AggRecord()
    for partition_key, explicit_hash_key, data in records:
        if not aggregate.add_user_record(partition_key, data, explicit_hash_key):
            raise ValueError(f"{partition_key}: the vector does not fit one aggregate")
    _, _, body = aggregate.get_contents()
    return bytes(body)


def _checked(body: bytes, records: Sequence[UserRecord]) -> None:
    """The library's own de-aggregator reads the vector back as the records put in, numbered
    0, 1, ... (their sub-sequence numbers). Its one quirk: a record without an explicit hash key
    in an aggregate whose table has some comes back with the table's first one (it does not
    check that the field is present), so a hash key is compared only where one was set."""
    event = {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "data": _b64(body),
            "partitionKey": records[0][0],
            "sequenceNumber": "1",
            "approximateArrivalTimestamp": 1.0,
        }
    }
    read = [r["kinesis"] for r in deaggregate_records([event])]
    got = [(r["partitionKey"], base64.b64decode(r["data"]), r["subSequenceNumber"]) for r in read]
    assert got == [(pk, data, n) for n, (pk, _, data) in enumerate(records)], "aws-kinesis-agg reads it otherwise"
    for r, (_, explicit_hash_key, _) in zip(read, records, strict=True):
        if explicit_hash_key is not None:
            assert r["explicitHashKey"] == explicit_hash_key, r


def _aggregate_vector(name: str, records: Sequence[UserRecord]) -> dict[str, Any]:
    body = _aggregate(records)
    _checked(body, records)
    return {
        "name": name,
        "data_base64": _b64(body),
        "expected": "aggregate",
        "user_records": [
            {"sub_sequence_number": n, "partition_key": pk, "explicit_hash_key": ehk, "data_base64": _b64(data)}
            for n, (pk, ehk, data) in enumerate(records)
        ],
    }


def _with_digest(message: bytes) -> bytes:
    return aws_kinesis_agg.MAGIC + message + hashlib.md5(message).digest()


def _invalid_vector(name: str, message: Any, error: str) -> dict[str, Any]:
    # Partial: the library's protobuf classes refuse to serialise a missing required field.
    body = _with_digest(message.SerializePartialToString())
    return {"name": name, "data_base64": _b64(body), "expected": "invalid", "error": error}


def _message(partition_keys: Sequence[str], records: Sequence[dict[str, Any]]) -> Any:
    message = messages_pb2.AggregatedRecord()
    message.partition_key_table.extend(partition_keys)
    for fields in records:
        record = message.records.add()
        for field, value in fields.items():
            setattr(record, field, value)
    return message


def vectors() -> list[dict[str, Any]]:
    """Every vector, in a fixed order."""
    one = [("only-key", None, b'{"id":"only"}')]
    several_keys = [(f"key-{i % 5}", None, f'{{"id":"r{i}","n":{i}}}'.encode()) for i in range(23)]
    hash_keys = [
        ("a", "0", b"first"),
        ("b", "170141183460469231731687303715884105728", b"second"),
        ("a", None, b"third, no hash key"),
        ("c", "340282366920938463463374607431768211455", b"fourth"),
        ("b", "170141183460469231731687303715884105728", b"fifth"),
    ]
    empty_data = [("k-empty", None, b""), ("k-full", None, b"x"), ("k-empty", None, b"")]
    large = [("big-1", None, _pattern(20_000, 1)), ("small", None, b"s"), ("big-2", "42", _pattern(17_000, 7))]
    many = [(f"user-{i:04d}", None, _pattern(i % 40, i)) for i in range(300)]
    unicode_keys = [("clé-é", None, "données".encode()), ("键", None, b"\x00\xff\x00")]

    plain_json = b'{"id":"plain"}'
    aggregate = _aggregate(several_keys)
    corrupt = aggregate[:-1] + bytes([aggregate[-1] ^ 0x01])
    changed_body = aggregate[:10] + bytes([aggregate[10] ^ 0x01]) + aggregate[11:]

    return [
        _aggregate_vector("one user record", one),
        _aggregate_vector("several partition keys", several_keys),
        _aggregate_vector("explicit hash keys", hash_keys),
        _aggregate_vector("empty data", empty_data),
        _aggregate_vector("large data", large),
        _aggregate_vector("many user records", many),
        _aggregate_vector("non-ASCII partition keys", unicode_keys),
        {"name": "plain JSON", "data_base64": _b64(plain_json), "expected": "plain"},
        {"name": "empty record", "data_base64": "", "expected": "plain"},
        {"name": "corrupt digest", "data_base64": _b64(corrupt), "expected": "plain"},
        {"name": "content changed after the digest", "data_base64": _b64(changed_body), "expected": "plain"},
        {"name": "magic alone", "data_base64": _b64(aws_kinesis_agg.MAGIC), "expected": "plain"},
        {
            "name": "magic and a digest of nothing, truncated",
            "data_base64": _b64(_with_digest(b"")[:-1]),
            "expected": "plain",
        },
        _invalid_vector("no user records", _message(["k"], []), "the aggregate holds no user records"),
        _invalid_vector(
            "partition key index outside the table",
            _message(["k"], [{"partition_key_index": 0, "data": b"a"}, {"partition_key_index": 1, "data": b"b"}]),
            "user record 1 names partition key 1, but the partition key table has 1 entries",
        ),
        _invalid_vector(
            "explicit hash key index outside the table",
            _message(["k"], [{"partition_key_index": 0, "explicit_hash_key_index": 0, "data": b"a"}]),
            "user record 0 names explicit hash key 0, but the explicit hash key table has 0 entries",
        ),
        _invalid_vector(
            "no data",
            _message(["k"], [{"partition_key_index": 0}]),
            "user record 0 has no data (a required field)",
        ),
        _invalid_vector(
            "no partition key index",
            _message(["k"], [{"data": b"a"}]),
            "user record 0 has no partition_key_index (a required field)",
        ),
    ]


def render() -> str:
    """The vectors file's text."""
    return json.dumps({"generator": "aws-kinesis-agg", "vectors": vectors()}, indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    VECTORS.write_text(render(), encoding="utf-8")
    print(f"wrote {VECTORS}")
