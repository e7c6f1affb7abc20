"""SDK clients of the local run: every one talks to the local moto server, signed with the
credentials of one principal, so moto picks the account from the keys as AWS would."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config

BOTO_CONFIG = botocore.config.Config(
    retries={"max_attempts": 2, "mode": "standard"}, read_timeout=900, connect_timeout=5, max_pool_connections=32
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def env(self) -> dict[str, str]:
        """As Lambda hands them to a function's process."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


@dataclass(frozen=True)
class LocalAws:
    """The moto endpoint in the run's one region."""

    endpoint: str
    region: str

    def client(self, service: str, creds: Credentials) -> Any:
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
            config=BOTO_CONFIG,
        )

    def assume(self, creds: Credentials, role_arn: str, session: str, external_id: str | None = None) -> Credentials:
        extra = {} if external_id is None else {"ExternalId": external_id}
        c = self.client("sts", creds).assume_role(RoleArn=role_arn, RoleSessionName=session, **extra)["Credentials"]
        return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])

    def create_admin(self, account: str) -> Credentials:
        """An IAM user with its own access keys in `account`: moto puts every later request
        signed with them in that account. Only this bootstrap call names the account."""
        iam = boto3.client(
            "iam",
            region_name=self.region,
            endpoint_url=self.endpoint,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
            config=BOTO_CONFIG,
        )

        def add_account_header(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account

        iam.meta.events.register("before-send.iam.*", add_account_header)
        iam.create_user(UserName="local-admin")
        key = iam.create_access_key(UserName="local-admin")["AccessKey"]
        creds = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        who = self.client("sts", creds).get_caller_identity()["Account"]
        if who != account:
            raise RuntimeError(f"moto put the admin of {account} in {who}")
        return creds
