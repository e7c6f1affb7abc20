"""The launcher's DynamoDB transactions (`local_run.moto_launcher`): all or nothing, as DynamoDB
guarantees, at the cost of the items a transaction names, not of its table (moto's own rollback
deep-copies every table it writes, so a transaction's cost grew with the table)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.table import Table

TABLE = "undo-test"


@pytest.fixture
def dynamodb(launcher: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(
        dynamodb_models.DynamoDBBackend, "transact_write_items", launcher.transact_write_items_undoing_items
    )
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for key in ("kept", "updated", "deleted", "held"):
            client.put_item(TableName=TABLE, Item={"id": {"S": key}, "v": {"N": "1"}})
        yield client


def items(client: Any) -> dict[str, dict[str, Any]]:
    found = client.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return {item["id"]["S"]: item for item in found}


def actions(held_condition: str) -> list[dict[str, Any]]:
    """A put over an item, an update, a delete, a new item, and a conditional put on `held`."""
    return [
        {"Put": {"TableName": TABLE, "Item": {"id": {"S": "kept"}, "v": {"N": "2"}}}},
        {
            "Update": {
                "TableName": TABLE,
                "Key": {"id": {"S": "updated"}},
                "UpdateExpression": "SET v = :two, w = :two",
                "ExpressionAttributeValues": {":two": {"N": "2"}},
            }
        },
        {"Delete": {"TableName": TABLE, "Key": {"id": {"S": "deleted"}}}},
        {"Put": {"TableName": TABLE, "Item": {"id": {"S": "new"}, "v": {"N": "2"}}}},
        {
            "Put": {
                "TableName": TABLE,
                "Item": {"id": {"S": "held"}, "v": {"N": "2"}},
                "ConditionExpression": held_condition,
            }
        },
    ]


def test_a_cancelled_transaction_leaves_every_item_as_it_was(dynamodb: Any) -> None:
    before = items(dynamodb)
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException) as cancelled:
        dynamodb.transact_write_items(TransactItems=actions("attribute_not_exists(id)"))
    codes = [reason["Code"] for reason in cancelled.value.response["CancellationReasons"]]
    assert codes == ["None", "None", "None", "None", "ConditionalCheckFailed"]
    assert items(dynamodb) == before, "the four writes before the failed condition were undone"


def test_a_transaction_that_goes_through_writes_every_item(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=actions("attribute_exists(id)"))
    after = items(dynamodb)
    assert sorted(after) == ["held", "kept", "new", "updated"]
    assert {key: item["v"]["N"] for key, item in after.items()} == dict.fromkeys(after, "2")
    assert after["updated"]["w"] == {"N": "2"}


def test_a_transaction_never_copies_a_table(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    copied: list[str] = []
    deepcopy = copy.deepcopy

    def counting(obj: Any, memo: Any = None) -> Any:
        if isinstance(obj, Table):
            copied.append(obj.name)
        return deepcopy(obj, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    dynamodb.transact_write_items(TransactItems=actions("attribute_exists(id)"))
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=actions("attribute_not_exists(id)"))
    assert copied == [], "a transaction's cost must not grow with its table"
