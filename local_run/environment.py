"""The two accounts in moto, with the resources the stacks declare that the data path touches.

Source account: the stream, the dead-letter bucket, the producer's and the relay's execution
roles. Target account: the target's execution role, the cross-account role, the target
function (registered only there, so only that account's credentials find it) and, when the
target stack declares it (`idempotencyStore`), the idempotency table.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local_run.moto_clients import Credentials, LocalAws
from local_run.stacks import FUNCTIONS, Stacks
from local_run.template import Template, resolve

# The Pulumi type of a DynamoDB table, as the rendered templates name it.
TABLE_TYPE = "aws:dynamodb:Table"

LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@dataclass(frozen=True)
class Stream:
    name: str
    arn: str
    shards: tuple[str, ...]
    # The largest record it takes, data and partition key (its MaxRecordSizeInKiB, in bytes).
    max_record_bytes: int


@dataclass(frozen=True)
class Bucket:
    name: str
    arn: str


@dataclass(frozen=True)
class Environment:
    admins: Mapping[str, Credentials]  # account -> its admin user's keys
    stream: Stream
    dead_letter_bucket: Bucket
    role_arns: Mapping[str, str]  # logical name (producerRole, ...) -> ARN
    # What the templates' `${logical.attribute}` interpolations resolve to here.
    refs: Mapping[str, str]
    # The target account's DynamoDB tables the target stack declares: logical name -> table name.
    tables: Mapping[str, str]

    @classmethod
    def create(cls, aws: LocalAws, stacks: Stacks, progress: Callable[[str], None]) -> Environment:
        admins = {account: aws.create_admin(account) for account in (stacks.source_account, stacks.target_account)}
        progress(
            f"accounts: source {stacks.source_account}, target {stacks.target_account} "
            "(admin users with their own keys)"
        )
        source_admin, target_admin = admins[stacks.source_account], admins[stacks.target_account]
        stream = _create_stream(aws, source_admin, stacks)
        bucket = _create_bucket(aws, source_admin, stacks)
        role_arns = {}
        for function in FUNCTIONS:
            logical = f"{function}Role"
            name = stacks.template_of(function).literal(logical, "name")
            iam = aws.client("iam", admins[stacks.account_of(function)])
            role_arns[logical] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        cross_account_role = _create_cross_account_role(aws, target_admin, stacks, role_arns["relayRole"])
        _register_target_function(aws, target_admin, stacks, role_arns["targetRole"])
        tables = {
            logical: _create_table(aws, target_admin, stacks.target, logical)
            for logical, _ in stacks.target.resources_of_type(TABLE_TYPE)
        }
        progress(
            f"source {stacks.source_account}: stream {stream.name} ({len(stream.shards)} shards), "
            f"dead-letter bucket {bucket.name}, roles {', '.join(role_arns)}"
        )
        progress(
            f"target {stacks.target_account}: role {cross_account_role} (trusts the relay role + external id), "
            f"function {stacks.function_names['target']}"
            + "".join(f", table {name} ({logical})" for logical, name in tables.items())
        )
        refs = {
            "stream.name": stream.name,
            "stream.id": stream.name,
            "stream.arn": stream.arn,
            "deadLetterBucket.bucket": bucket.name,
            "deadLetterBucket.id": bucket.name,
            "deadLetterBucket.arn": bucket.arn,
            "crossAccountRole.arn": stacks.cross_account_role_arn,
        }
        for function in FUNCTIONS:
            refs[f"{function}Function.arn"] = stacks.function_arns[function]
            refs[f"{function}Function.name"] = stacks.function_names[function]
        for logical, arn in role_arns.items():
            refs[f"{logical}.arn"] = arn
        for logical, name in tables.items():
            refs[f"{logical}.name"] = name
            refs[f"{logical}.id"] = name
            refs[f"{logical}.arn"] = f"arn:aws:dynamodb:{stacks.region}:{stacks.target_account}:table/{name}"
        return cls(admins, stream, bucket, role_arns, refs, tables)


def _create_stream(aws: LocalAws, admin: Credentials, stacks: Stacks) -> Stream:
    kinesis = aws.client("kinesis", admin)
    name = stacks.source.literal("stream", "name")
    props = stacks.source.properties("stream")
    # Unset in the template: Kinesis's default, which CreateStream applies by itself.
    size: dict[str, int] = {}
    if props.get("maxRecordSizeInKib") is not None:
        size["MaxRecordSizeInKiB"] = int(props["maxRecordSizeInKib"])
    if (props.get("streamModeDetails") or {}).get("streamMode", "PROVISIONED") == "ON_DEMAND":
        kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"}, **size)
    else:
        kinesis.create_stream(StreamName=name, ShardCount=int(props.get("shardCount") or 1), **size)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    shards = tuple(s["ShardId"] for s in kinesis.list_shards(StreamName=name)["Shards"])
    return Stream(name, summary["StreamARN"], shards, summary["MaxRecordSizeInKiB"] * 1024)


def _create_bucket(aws: LocalAws, admin: Credentials, stacks: Stacks) -> Bucket:
    name = str(stacks.source.literal("deadLetterBucket", "bucket"))
    s3 = aws.client("s3", admin)
    if stacks.region == "us-east-1":  # S3 refuses a location constraint naming its default region
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": stacks.region})
    return Bucket(name, f"arn:aws:s3:::{name}")


def _create_cross_account_role(aws: LocalAws, admin: Credentials, stacks: Stacks, relay_role_arn: str) -> str:
    name = stacks.target.literal("crossAccountRole", "name")
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{stacks.source_account}:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"sts:ExternalId": stacks.external_id},
                        "ArnEquals": {"aws:PrincipalArn": relay_role_arn},
                    },
                }
            ],
        }
    )
    arn = aws.client("iam", admin).create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    if arn != stacks.cross_account_role_arn:
        raise RuntimeError(
            f"moto created the cross-account role as {arn}, the stacks expect {stacks.cross_account_role_arn}"
        )
    return str(name)


def _create_table(aws: LocalAws, admin: Credentials, template: Template, logical: str) -> str:
    """Creates the table `logical` of `template` as its properties declare it (name, key
    schema, attributes, billing mode, encryption, deletion protection, then its TTL) and returns
    its name. A property the local run does not create is an error naming it."""
    props = dict(template.properties(logical))
    where = f"{template.stack} stack, {logical}"
    known = {
        "name",
        "hashKey",
        "rangeKey",
        "attributes",
        "billingMode",
        "ttl",
        "serverSideEncryption",
        "deletionProtectionEnabled",
    }
    unknown = sorted(set(props) - known)
    if unknown:
        raise RuntimeError(f"{where}: the local run does not create a table with {', '.join(unknown)}")
    name = str(template.literal(logical, "name"))
    keys = [{"AttributeName": str(template.literal(logical, "hashKey")), "KeyType": "HASH"}]
    if "rangeKey" in props:
        keys.append({"AttributeName": str(template.literal(logical, "rangeKey")), "KeyType": "RANGE"})
    attributes = [
        {"AttributeName": resolve(a["name"], {}, f"{where}.attributes"), "AttributeType": resolve(a["type"], {}, where)}
        for a in props.get("attributes") or []
    ]
    billing = str(template.literal(logical, "billingMode", "PROVISIONED"))
    create: dict[str, Any] = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": attributes,
        "BillingMode": billing,
        "DeletionProtectionEnabled": bool(props.get("deletionProtectionEnabled", False)),
    }
    if billing != "PAY_PER_REQUEST":
        raise RuntimeError(f"{where}: the local run creates on-demand tables only (billingMode {billing})")
    encryption = props.get("serverSideEncryption") or {}
    if encryption.get("enabled"):
        create["SSESpecification"] = {"Enabled": True}
    dynamodb = aws.client("dynamodb", admin)
    dynamodb.create_table(**create)
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1})
    ttl = props.get("ttl") or {}
    if ttl.get("enabled"):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": resolve(ttl["attributeName"], {}, where)},
        )
    return name


def _register_target_function(aws: LocalAws, admin: Credentials, stacks: Stacks, role_arn: str) -> None:
    """Registers the target in moto so Invoke resolves it by account; the code runs elsewhere
    (the launcher hands each Invoke to the runtime emulator that hosts the release binary)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n# runs locally under local_run/runtime_api.py\n")
    aws.client("lambda", admin).create_function(
        FunctionName=stacks.function_names["target"],
        Runtime="provided.al2023",
        Handler="bootstrap",
        Role=role_arn,
        Code={"ZipFile": buf.getvalue()},
        Timeout=int(stacks.target.literal("targetFunction", "timeout", 30)),
    )
