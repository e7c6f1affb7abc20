"""The target library's DynamoDB idempotency store against moto's DynamoDB: claims, answers,
releases and take-overs through the real SDK client and real conditional transactions
(`local_run.store_check` drives the example binary `store_check`).

moto returns the failed item in each ConditionalCheckFailed cancellation reason (as DynamoDB
does with ReturnValuesOnConditionCheckFailure=ALL_OLD), so the store's round trips here are
those of DynamoDB: a claim with held keys is two transactions and no read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local_run.infra_command import ROOT
from local_run.store_check import StoreCheck, store_on_moto

TABLE = "relay-target-idempotency"
NOW = 1_800_000_000
CLAIM_S = 60
KEEP_S = 14 * 86_400


@pytest.fixture(scope="module")
def store() -> Iterator[tuple[StoreCheck, Any]]:
    with store_on_moto(ROOT / ".demo" / "store-e2e", TABLE) as pair:
        yield pair


def item(dynamodb: Any, key: str) -> dict[str, Any]:
    found = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": key}}, ConsistentRead=True)
    return {name: next(iter(value.values())) for name, value in found.get("Item", {}).items()}


def test_claim_answer_release_and_take_over(store: tuple[StoreCheck, Any]) -> None:
    check, dynamodb = store
    keys = ["a/1", "a/2", "a/3"]

    first = check.claim(keys, "delivery-1", NOW, NOW + CLAIM_S)
    assert first["claims"] == ["claimed"] * 3, first
    assert first["round_trips"] == 1
    assert item(dynamodb, "a/1") == {
        "id": "a/1",
        "status": "in_progress",
        "owner": "delivery-1",
        "claim_expires_at": str(NOW + CLAIM_S),
        "expires_at": str(NOW + CLAIM_S + 3600),
    }

    done = check.complete("delivery-1", [("a/1", "ok"), ("a/2", "rejected:bad schema")], ["a/3"], NOW + KEEP_S)
    assert done["lost_claims"] == [], done
    assert done["round_trips"] == 1
    assert item(dynamodb, "a/2") == {
        "id": "a/2",
        "status": "completed",
        "owner": "delivery-1",
        "claim_expires_at": str(NOW + CLAIM_S),
        "verdict": "rejected",
        "reason": "bad schema",
        "expires_at": str(NOW + KEEP_S),
    }
    assert item(dynamodb, "a/3") == {}, "a released claim is deleted"

    # A redelivery: the answered keys are answered from the store, the released one runs again.
    again = check.claim([*keys, "a/4"], "delivery-2", NOW + 10, NOW + 10 + CLAIM_S)
    assert again["claims"] == ["completed:ok", "completed:rejected:bad schema", "claimed", "claimed"], again
    assert again["round_trips"] == 2, "one cancelled transaction, one without the held keys; no read"

    # Another owner's live claim is in progress; once expired, it is claimed by the newcomer.
    live = check.claim(["a/3"], "delivery-3", NOW + 20, NOW + 20 + CLAIM_S)
    assert live["claims"] == ["in_progress"], live
    expired_at = NOW + 10 + CLAIM_S
    taken = check.claim(["a/3"], "delivery-3", expired_at + 1, expired_at + 1 + CLAIM_S)
    assert taken["claims"] == ["claimed"], taken
    assert item(dynamodb, "a/3")["owner"] == "delivery-3"

    # The first claimant's answer comes too late: a lost claim, and the item is left alone.
    late = check.complete("delivery-2", [("a/3", "ok")], ["a/4"], NOW + KEEP_S)
    assert late["lost_claims"] == ["a/3"], late
    assert item(dynamodb, "a/3")["status"] == "in_progress"
    assert item(dynamodb, "a/4") == {}, "the rest of the transaction went through"

    # A claim at exactly its expiry second is still live.
    edge = check.claim(["a/3"], "delivery-4", expired_at + 1 + CLAIM_S, NOW + 1000)
    assert edge["claims"] == ["in_progress"], edge


def test_250_keys_are_three_transactions_each_way(store: tuple[StoreCheck, Any]) -> None:
    check, _ = store
    keys = [f"bulk/{i}" for i in range(250)]
    claimed = check.claim(keys, "bulk-1", NOW, NOW + CLAIM_S)
    assert claimed["claims"] == ["claimed"] * 250
    assert claimed["round_trips"] == 3

    completed = [(key, "ok" if i % 2 else "rejected:odd one out") for i, key in enumerate(keys)]
    done = check.complete("bulk-1", completed, [], NOW + KEEP_S)
    assert done == {**done, "lost_claims": [], "round_trips": 3}

    # Every key held: each chunk's one cancelled transaction answers all its keys.
    again = check.claim(keys, "bulk-2", NOW + 5, NOW + 5 + CLAIM_S)
    assert again["claims"] == [("completed:ok" if i % 2 else "completed:rejected:odd one out") for i in range(250)]
    assert again["round_trips"] == 3


def test_a_bad_command_is_an_error_answer(store: tuple[StoreCheck, Any]) -> None:
    check, _ = store
    answer = check.complete("x", [("k", "maybe")], [], NOW)
    assert "error" in answer and "maybe" in answer["error"], answer


def test_500_keys_go_as_five_concurrent_transactions(store: tuple[StoreCheck, Any]) -> None:
    # The store sends its chunks concurrently; moto serialises them (local_run.moto_launcher's
    # _dynamodb_lock), as DynamoDB keeps each transaction atomic.
    check, _ = store
    keys = [f"wide/{i}" for i in range(500)]
    claimed = check.claim(keys, "wide-1", NOW, NOW + CLAIM_S)
    assert claimed.get("claims") == ["claimed"] * 500, claimed.get("error")
    assert claimed["round_trips"] == 5
    released = check.complete("wide-1", [], keys, NOW + KEEP_S)
    assert released == {**released, "lost_claims": [], "round_trips": 5}
