"""The three functions as Lambda runs them: one warm container each (a `FunctionHost`), or
several (a `local_run.containers.FunctionPool`, for `make soak`), started
with the environment their rendered resource declares plus what Lambda itself adds (the
execution role's credentials, the function's name and memory, the region, the log format and
level of its `loggingConfig`)."""

from __future__ import annotations

import os
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_run.containers import FunctionPool
from local_run.environment import Environment
from local_run.faults import FaultInjector
from local_run.infra_command import ROOT
from local_run.moto_clients import Credentials, LocalAws
from local_run.runtime_api import EchoLine, FunctionHost, HostFaults
from local_run.stacks import FUNCTIONS, Stacks


def create_hosts(
    stacks: Stacks,
    binaries: Mapping[str, Sequence[str]],
    *,
    logs_dir: Path,
    sync_payload_limit: int,
    echo: EchoLine | None,
    containers: Mapping[str, int] | None = None,
    faults: FaultInjector | None = None,
    slow_target_ms: float = 0.0,
) -> dict[str, FunctionHost | FunctionPool]:
    """A runtime emulator per container of each function (`containers`: function -> count,
    default 1), listening but with no process yet: moto needs the target's address before any
    function can get its credentials. With `faults`, the relay's and the target's containers
    inject the soak's runtime faults (`local_run.faults`). With `slow_target_ms`, each target container
    spends that long per record it is sent."""
    timeouts = {f: float(stacks.template_of(f).literal(f"{f}Function", "timeout", 30)) for f in FUNCTIONS}
    host_faults = (
        {
            # A slow target answers after the relay's whole timeout: the relay must give up on it in time.
            "target": HostFaults(faults, kill="target_kill", slow="target_slow", slow_s=timeouts["relay"] + 1.0),
            "relay": HostFaults(faults, kill="relay_kill"),
        }
        if faults
        else {}
    )
    hosts: dict[str, FunctionHost | FunctionPool] = {}
    for f in FUNCTIONS:
        count = (containers or {}).get(f, 1)
        logs: list[dict[str, Any]] = []
        made = [
            FunctionHost(
                stacks.function_names[f],
                binaries[f],
                arn=stacks.function_arns[f],
                timeout_s=timeouts[f],
                max_request_bytes=sync_payload_limit,
                log_path=str(logs_dir / (f"{f}.log" if i == 0 else f"{f}-{i}.log")),
                echo=echo,
                logs=logs,
                faults=host_faults.get(f),
                processing_ms_per_record=slow_target_ms if f == "target" else 0.0,
            )
            for i in range(count)
        ]
        hosts[f] = made[0] if count == 1 else FunctionPool(made)
    return hosts


@dataclass(frozen=True)
class RunningFunctions:
    hosts: Mapping[str, FunctionHost | FunctionPool]
    template_env: Mapping[str, Mapping[str, str]]  # what each function's rendered resource sets
    execution_credentials: Mapping[str, Credentials]  # what Lambda hands each function

    @classmethod
    def start(
        cls,
        hosts: Mapping[str, FunctionHost | FunctionPool],
        stacks: Stacks,
        environment: Environment,
        aws: LocalAws,
        extra_env: Mapping[str, Mapping[str, str]],
        progress: Callable[[str], None],
    ) -> RunningFunctions:
        """Starts each function's process; `extra_env` adds variables to a function's (tests only)."""
        template_env: dict[str, dict[str, str]] = {}
        credentials: dict[str, Credentials] = {}
        for f in FUNCTIONS:
            template = stacks.template_of(f)
            template_env[f] = template.function_environment(f"{f}Function", environment.refs)
            # Lambda hands a function its execution role's credentials, in its own account.
            admin = environment.admins[stacks.account_of(f)]
            credentials[f] = aws.assume(admin, environment.role_arns[f"{f}Role"], f"lambda-{f}")
            name = stacks.function_names[f]
            lambda_env = {
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(template.literal(f"{f}Function", "memorySize", 128)),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
                **template.lambda_logging_environment(f"{f}Function"),
                "AWS_REGION": aws.region,
                "AWS_DEFAULT_REGION": aws.region,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_ENDPOINT_URL": aws.endpoint,
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", "/tmp"),
            }
            hosts[f].start({**template_env[f], **credentials[f].env(), **lambda_env, **extra_env.get(f, {})})
        progress(
            "functions: "
            + ", ".join(
                f"{f} ({' '.join(hosts[f].command)[-60:]}, {len(template_env[f])} template variables)"
                for f in FUNCTIONS
            )
        )
        return cls(hosts, template_env, credentials)


def release_binaries(work_dir: Path) -> dict[str, list[str]]:
    """Unzips target/lambda/<f>/bootstrap.zip into <work_dir>/bin/<f>/ (when newer) and returns the commands."""
    commands = {}
    for f in FUNCTIONS:
        archive = ROOT / "target" / "lambda" / f / "bootstrap.zip"
        if not archive.exists():
            raise FileNotFoundError(f"{archive} is missing: run `make build` first")
        dest = work_dir / "bin" / f
        binary = dest / "bootstrap"
        if not binary.exists() or binary.stat().st_mtime < archive.stat().st_mtime:
            dest.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(archive) as z:
                z.extract("bootstrap", dest)
            binary.chmod(0o755)
            os.utime(binary)
        commands[f] = [str(binary)]
    return commands
