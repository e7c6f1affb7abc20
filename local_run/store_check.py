"""The target library's DynamoDB idempotency store (`relay_target::idempotency::dynamodb`) against
moto, driven through its example binary `store_check` (functions/target-lib/examples/store_check.rs):
one JSON command a line in, one JSON answer a line out. Used by the store's end-to-end test
(tests/e2e/test_idempotency_store.py) and its benchmark (bench/idempotency.py).

The table is created here as the target stack declares it (hash key and TTL attribute as the
binary reports them from `shared::config`, on-demand billing); moto runs alone, without the
rest of the local run.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from local_run.infra_command import ROOT
from local_run.limits import limits
from local_run.moto_clients import Credentials, LocalAws
from local_run.moto_server import MotoServer

BINARY = ROOT / "target" / "debug" / "examples" / "store_check"
BUILD_COMMAND = ("cargo", "build", "--quiet", "--locked", "-p", "relay-target", "--example", "store_check")
REGION = "eu-west-1"
# moto picks the account from the access key; any key of this shape is the default account.
CREDENTIALS = Credentials("AKIAIDEMPOTENCYSTORE", "store-check-secret")


class StoreCheckError(RuntimeError):
    """The binary could not be built, or it answered something that is not an answer."""


def build() -> Path:
    """Builds `store_check` (the dev profile) and returns its path."""
    proc = subprocess.run(BUILD_COMMAND, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not BINARY.exists():
        raise StoreCheckError(
            f"`{' '.join(BUILD_COMMAND)}` failed (exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}"
        )
    return BINARY


class StoreCheck:
    """One `store_check` process on one table of the moto at `endpoint`."""

    def __init__(self, binary: Path, endpoint: str, table: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
                **CREDENTIALS.env(),
                "IDEMPOTENCY_TABLE": table,
            }
        )
        self.proc = subprocess.Popen(
            [str(binary)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def send(self, command: dict[str, Any]) -> dict[str, Any]:
        """Sends one command and returns its answer (an `error` answer is returned, not raised)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(5)
            stderr = self.proc.stderr.read() if self.proc.stderr else ""
            raise StoreCheckError(f"store_check exited with {self.proc.returncode} on {command}: {stderr.strip()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def claim(self, keys: list[str], owner: str, now: int, expires_at: int) -> dict[str, Any]:
        return self.send({"op": "claim", "keys": keys, "owner": owner, "now": now, "expires_at": expires_at})

    def complete(
        self, owner: str, completed: list[tuple[str, str]], released: list[str], keep_until: int
    ) -> dict[str, Any]:
        return self.send(
            {
                "op": "complete",
                "owner": owner,
                "completed": [list(pair) for pair in completed],
                "released": released,
                "keep_until": keep_until,
            }
        )

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def create_table(aws: LocalAws, table: str, key_attribute: str, ttl_attribute: str) -> Any:
    """The idempotency table as the target stack declares it; returns the DynamoDB client."""
    dynamodb = aws.client("dynamodb", CREDENTIALS)
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": key_attribute, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key_attribute, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True},
    )
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
    )
    return dynamodb


@contextmanager
def store_on_moto(logs_dir: Path, table: str) -> Iterator[tuple[StoreCheck, Any]]:
    """moto alone, the table in it, and a `store_check` on it: (the process, a boto3 DynamoDB
    client for looking at the items)."""
    binary = build()
    logs_dir.mkdir(parents=True, exist_ok=True)
    moto = MotoServer.start(
        region=REGION,
        logs_dir=logs_dir,
        routes={},
        trust_rules={},
        sync_payload_limit=limits().lambda_sync_payload_limit,
    )
    store: StoreCheck | None = None
    try:
        store = StoreCheck(binary, moto.endpoint, table)
        schema = store.send({"op": "schema"})
        dynamodb = create_table(
            LocalAws(moto.endpoint, REGION), table, schema["key_attribute"], schema["ttl_attribute"]
        )
        yield store, dynamodb
    finally:
        if store is not None:
            store.close()
        moto.stop()
