"""moto's standalone server for both accounts, started through `local_run.moto_launcher` on a free
port of 127.0.0.1, and the audit it writes (one JSON line per AssumeRole and per Invoke)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_run.moto_clients import free_port
from local_run.processes import spawn, terminate

START_TIMEOUT_S = 30


@dataclass(frozen=True)
class TrustRule:
    """The two conditions of a trust policy the launcher enforces (moto evaluates none)."""

    external_id: str
    principal_account: str


class MotoServer:
    def __init__(self, proc: subprocess.Popen[bytes], endpoint: str, audit_path: Path) -> None:
        self.proc = proc
        self.endpoint = endpoint
        self.audit_path = audit_path

    @classmethod
    def start(
        cls,
        *,
        region: str,
        logs_dir: Path,
        routes: Mapping[str, str],
        trust_rules: Mapping[str, TrustRule],
        sync_payload_limit: int,
        faults: str | None = None,
    ) -> MotoServer:
        """`routes`: function ARN -> URL of the runtime emulator that runs it; `faults`: the
        soak's fault matrix (`FaultInjector.to_json`), whose moto classes the launcher injects."""
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        audit_path = logs_dir / "moto-audit.jsonl"
        audit_path.write_text("")
        # moto picks the account from each request's keys; MOTO_ACCOUNT_ID would override that.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MOTO_ACCOUNT_ID"}
        env.update(
            {
                "AWS_REGION": region,
                "AWS_EC2_METADATA_DISABLED": "true",
                "LOCAL_SYNC_PAYLOAD_LIMIT": str(sync_payload_limit),
                "LOCAL_LAMBDA_ROUTES": json.dumps(dict(routes)),
                "LOCAL_AUDIT_LOG": str(audit_path),
                "LOCAL_TRUST_RULES": json.dumps(
                    {
                        arn: {"external_id": r.external_id, "principal_account": r.principal_account}
                        for arn, r in trust_rules.items()
                    }
                ),
                **({"LOCAL_FAULTS": faults} if faults else {}),
            }
        )
        command = [sys.executable, "-m", "local_run.moto_launcher", "-H", "127.0.0.1", "-p", str(port)]
        with open(logs_dir / "moto.log", "ab") as log:
            proc = spawn(command, env=env, stdout=log)
        server = cls(proc, endpoint, audit_path)
        try:
            server._wait_until_up(logs_dir / "moto.log")
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_until_up(self, log: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto exited with {self.proc.returncode}; see {log}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/reset-auth", timeout=1)
            except urllib.error.HTTPError:
                return  # an answer, even a refusal: the server is up
            except OSError:
                time.sleep(0.1)
                continue
            return
        raise RuntimeError(f"moto did not start within {START_TIMEOUT_S} s; see {log}")

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            terminate(self.proc)
