"""The local two-account run: moto, both accounts, the three functions, the schedule and the
event source mapping, plus the ledger that proves nothing was lost.

`LocalRun.start(spec)` builds it in dependency order from a `RunSpec`, each part from the
parts before it: the rendered stacks, the runtime emulators (moto needs the target's address),
moto, the accounts and their resources, the function processes, the event source mapping, the
ledger. Used by `local_run.demo` (make demo) and by the end-to-end tests (tests/e2e). Everything
binds to 127.0.0.1; every child process runs in its own process group and is stopped by
`LocalRun.stop()` (also registered with atexit; the demo also stops on SIGINT/SIGTERM), and a
start that fails stops what it had started.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_run.containers import FunctionPool
from local_run.environment import Environment
from local_run.esm import EventSourceMapping, MappingSettings
from local_run.faults import FaultInjector
from local_run.functions import RunningFunctions, create_hosts
from local_run.infra_command import ROOT
from local_run.ledger import Accounting, DeadLetterCollector, Ledger
from local_run.limits import Limits, limits
from local_run.moto_clients import Credentials, LocalAws
from local_run.moto_server import MotoServer, TrustRule
from local_run.runtime_api import FunctionHost
from local_run.stacks import Stacks
from local_run.stream import StreamOperator, record_ids
from local_run.template import TemplateError, resolve

# What the local run supplies in place of the secret the example stack files cannot hold.
DEMO_EXTERNAL_ID = "local-demo-external-id-7f3c"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunSpec:
    """What a run is built from; everything else comes from the rendered stacks."""

    binaries: Mapping[str, Sequence[str]]  # function -> command (the unzipped release bootstrap)
    work_dir: Path = ROOT / ".demo"  # logs/ goes here
    stack_dir: Path = ROOT  # where Pulumi.source.yaml and Pulumi.target.yaml are
    # Stack config set on top of the stack files, as `pulumi config set` would (e.g. batchSize).
    source_settings: Mapping[str, str] = field(default_factory=dict)
    target_settings: Mapping[str, str] = field(default_factory=dict)
    external_id: str = DEMO_EXTERNAL_ID
    # Variables added to a function's environment (the harness's own tests script stand-ins).
    extra_function_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    echo_logs: bool = False
    retry_base_delay_s: float = 0.02  # the mapping's retry back-off, time compressed
    # Warm containers per function (default 1 each), and the soak's faults (`local_run.faults`).
    containers: Mapping[str, int] = field(default_factory=dict)
    faults: FaultInjector | None = None
    slow_target_ms: float = 0.0  # processing time the target spends per record (0: none)


@dataclass(frozen=True)
class CrossAccountProof:
    source_credentials_invoke: str | None  # the error of an Invoke signed in the source account
    assume_without_external_id: str | None  # the error of an AssumeRole without the external id
    target_invokes: int  # Invokes of the target that reached it
    target_invokes_by_target_account_assumed_role: int  # ... signed with assumed target-account keys


class LocalRun:
    def __init__(
        self,
        *,
        spec: RunSpec,
        limits: Limits,
        stacks: Stacks,
        aws: LocalAws,
        moto: MotoServer,
        environment: Environment,
        functions: RunningFunctions,
        stream: StreamOperator,
        ledger: Ledger,
        esm: EventSourceMapping,
        dead_letters: DeadLetterCollector,
        stop_all: contextlib.ExitStack,
    ) -> None:
        self.spec = spec
        self.limits = limits
        self.stacks = stacks
        self.aws = aws
        self.moto = moto
        self.environment = environment
        self.functions = functions
        self.stream = stream
        self.ledger = ledger
        self.esm = esm
        self.dead_letters = dead_letters
        self._stop_all = stop_all

    @classmethod
    def start(cls, spec: RunSpec, progress: Progress = print) -> LocalRun:
        with contextlib.ExitStack() as started:  # stops what was started if a step fails
            logs_dir = spec.work_dir / "logs"
            logs_dir.mkdir(parents=True, exist_ok=True)
            run_limits = limits()
            progress("rendering the Pulumi program (stacks source, target)")
            stacks = Stacks.render(
                spec.stack_dir,
                external_id=spec.external_id,
                source_settings=spec.source_settings,
                target_settings=spec.target_settings,
            )
            echo = (lambda name, line: print(f"  [{name}] {line}", flush=True)) if spec.echo_logs else None
            hosts = create_hosts(
                stacks,
                spec.binaries,
                logs_dir=logs_dir,
                sync_payload_limit=run_limits.lambda_sync_payload_limit,
                echo=echo,
                containers=spec.containers,
                faults=spec.faults,
                slow_target_ms=spec.slow_target_ms,
            )
            for host in hosts.values():
                started.callback(host.stop)
            moto = MotoServer.start(
                region=stacks.region,
                logs_dir=logs_dir,
                routes={stacks.function_arns["target"]: hosts["target"].url},
                # moto evaluates no trust policy; these two conditions of the real one are
                # enforced by the launcher so a wrong external id or account fails here too.
                trust_rules={stacks.cross_account_role_arn: TrustRule(spec.external_id, stacks.source_account)},
                sync_payload_limit=run_limits.lambda_sync_payload_limit,
                faults=spec.faults.to_json() if spec.faults else None,
            )
            started.callback(moto.stop)
            progress(f"moto {moto.endpoint} (IAM, STS, Kinesis, S3, SQS, Lambda, DynamoDB for two accounts)")
            aws = LocalAws(moto.endpoint, stacks.region)
            environment = Environment.create(aws, stacks, progress)
            functions = RunningFunctions.start(hosts, stacks, environment, aws, spec.extra_function_env, progress)
            source_admin = environment.admins[stacks.source_account]
            stream = StreamOperator(aws.client("kinesis", source_admin), environment.stream, run_limits)
            ledger = Ledger(hosts["target"], stream)
            esm = _event_source_mapping(spec, stacks, environment, aws, functions, run_limits, progress)
            started.callback(esm.stop)
            esm.start()
            collector = DeadLetterCollector(aws.client("s3", source_admin), environment.dead_letter_bucket.name, ledger)
            started.callback(collector.stop)
            collector.start()
            run = cls(
                spec=spec,
                limits=run_limits,
                stacks=stacks,
                aws=aws,
                moto=moto,
                environment=environment,
                functions=functions,
                stream=stream,
                ledger=ledger,
                esm=esm,
                dead_letters=collector,
                stop_all=started.pop_all(),
            )
        atexit.register(run.stop)
        return run

    def stop(self) -> None:
        """Stops everything this run started, last started first; a second call does nothing."""
        self._stop_all.close()

    # ---- shortcuts to the parts ----
    @property
    def hosts(self) -> Mapping[str, FunctionHost | FunctionPool]:
        return self.functions.hosts

    def execution_credentials(self, function: str) -> Credentials:
        return self.functions.execution_credentials[function]

    def admin(self, account: str) -> Credentials:
        return self.environment.admins[account]

    # ---- playing the schedule ----
    def schedule_event(self) -> dict[str, Any]:
        """What EventBridge Scheduler sends: the schedule target's input, if the program sets one."""
        for _, schedule in self.stacks.source.resources_of_type("aws:scheduler:Schedule"):
            target_input = ((schedule.get("properties") or {}).get("target") or {}).get("input")
            if target_input is not None:
                parsed: dict[str, Any] = json.loads(resolve(target_input, self.environment.refs, "schedule input"))
                return parsed
        region, account = self.stacks.region, self.stacks.source_account
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler",
            "account": account,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": region,
            "resources": [f"arn:aws:scheduler:{region}:{account}:schedule/default/local"],
            "detail": {},
        }

    def tick(self) -> dict[str, Any]:
        """One scheduled invocation of the producer; its record ids join the ledger."""
        result = self.hosts["producer"].invoke(self.schedule_event())
        if result.function_error:
            self.ledger.producer_errors.append(result.body.decode(errors="replace"))
            return {}
        answer: dict[str, Any] = result.json()
        self.ledger.add_produced(answer.get("record_ids", []))
        return answer

    def put_records(self, records: Sequence[tuple[str, bytes]], explicit_hash_key: str | None = None) -> list[str]:
        """Writes (partition key, data) records straight into the stream with the source
        account's credentials; their record ids (`local_run.stream.record_ids`: the produced
        record's id, else the partition key; a KPL aggregate's user records each) join the ledger. Returns the sequence numbers."""
        sequence_numbers = self.stream.put_records(records, explicit_hash_key)
        self.ledger.add_produced(rid for pk, data in records for rid in record_ids(pk, data))
        return sequence_numbers

    def settle(self, ids: Sequence[str], timeout: float = 60) -> Accounting:
        """Waits until every id is delivered or dead-lettered (or the timeout), then for a quiet
        moment so late duplicates and dead letters are counted too; returns their accounting."""
        # The bucket as it is now: a caller that just moved dead letters (a redrive) must not be
        # answered from the collector's last look, which still counts them as dead-lettered.
        self.dead_letters.refresh()
        end = time.monotonic() + timeout
        while time.monotonic() < end and not self.ledger.settled(ids):
            time.sleep(0.1)
        self.esm.wait_idle(quiet_s=1.0, timeout=15)
        self.dead_letters.refresh()  # what the bucket holds now, not at the collector's last look
        return self.ledger.account(ids)

    # ---- proofs, counted by moto's audit ----
    def relay_assume_role_calls(self, since: int = 0) -> int:
        """AssumeRole calls on the cross-account role signed with the relay's own credentials
        (from audit entry `since` on)."""
        relay_key = self.execution_credentials("relay").access_key_id
        return sum(
            1
            for e in self.moto.audit()[since:]
            if e["event"] == "assume_role"
            and e["outcome"] == "ok"
            and e["role_arn"] == self.stacks.cross_account_role_arn
            and e["caller_access_key"] == relay_key
        )

    def target_invokes(self) -> list[dict[str, Any]]:
        target_arn = self.stacks.function_arns["target"]
        return [e for e in self.moto.audit() if e["event"] == "invoke" and e["function_arn"] == target_arn]

    def prove_cross_account(self) -> CrossAccountProof:
        """An Invoke of the target with the source account's credentials must not find it, and
        an AssumeRole of the cross-account role without the external id must be refused."""
        stacks = self.stacks
        lam = self.aws.client("lambda", self.admin(stacks.source_account))
        source_refused = None
        try:
            lam.invoke(FunctionName=stacks.function_names["target"], Payload=b"{}")
        except ClientError as err:
            source_refused = str(err.response["Error"]["Code"])
        no_external_id = None
        try:
            self.aws.assume(self.execution_credentials("relay"), stacks.cross_account_role_arn, "no-external-id")
        except ClientError as err:
            no_external_id = str(err.response["Error"]["Code"])
        relay_key = self.execution_credentials("relay").access_key_id
        reached = [e for e in self.target_invokes() if e["outcome"] in ("ok", "function_error")]
        return CrossAccountProof(
            source_credentials_invoke=source_refused,
            assume_without_external_id=no_external_id,
            target_invokes=len(reached),
            target_invokes_by_target_account_assumed_role=sum(
                1
                for e in reached
                if e["caller_account"] == stacks.target_account
                and e["caller_access_key"] != relay_key
                and e["function_account"] == stacks.target_account
            ),
        )


def _event_source_mapping(
    spec: RunSpec,
    stacks: Stacks,
    environment: Environment,
    aws: LocalAws,
    functions: RunningFunctions,
    run_limits: Limits,
    progress: Progress,
) -> EventSourceMapping:
    """The Kinesis event source mapping, configured from the rendered `relayEventSourceMapping`,
    to poll with the relay role's credentials (as Lambda's poller does); not started yet."""
    props = stacks.source.properties("relayEventSourceMapping")
    bucket = environment.dead_letter_bucket
    where = "relayEventSourceMapping.destinationConfig.onFailure.destinationArn"
    destination_ref = ((props.get("destinationConfig") or {}).get("onFailure") or {}).get("destinationArn")
    destination = resolve(destination_ref, environment.refs, where) if destination_ref else None
    if destination and destination != bucket.arn:
        raise TemplateError(f"on-failure destination {destination} is not the dead-letter bucket {bucket.arn}")
    settings = MappingSettings(
        batch_size=int(props.get("batchSize", 100)),
        batching_window_s=float(props.get("maximumBatchingWindowInSeconds", 0)),
        maximum_retry_attempts=int(props.get("maximumRetryAttempts", -1)),
        maximum_record_age_s=int(props.get("maximumRecordAgeInSeconds", -1)),
        bisect_on_function_error=bool(props.get("bisectBatchOnFunctionError", False)),
        report_batch_item_failures="ReportBatchItemFailures" in (props.get("functionResponseTypes") or []),
        parallelization_factor=int(props.get("parallelizationFactor", 1)),
        on_failure_bucket=bucket.name if destination else None,
        starting_position=props.get("startingPosition", "TRIM_HORIZON"),
        max_batch_bytes=run_limits.lambda_sync_payload_limit,
        retry_base_delay_s=spec.retry_base_delay_s,
    )
    relay_creds = functions.execution_credentials["relay"]
    esm = EventSourceMapping(
        kinesis_factory=lambda: aws.client("kinesis", relay_creds),
        s3_factory=lambda: aws.client("s3", relay_creds),
        stream_name=environment.stream.name,
        stream_arn=environment.stream.arn,
        region=stacks.region,
        function_arn=stacks.function_arns["relay"],
        function_role_arn=environment.role_arns["relayRole"],
        invoke=functions.hosts["relay"].invoke,
        settings=settings,
        log=progress,
    )
    progress(
        f"event source mapping: batch {settings.batch_size}, window {settings.batching_window_s}s, "
        f"retries {settings.maximum_retry_attempts}, bisect {settings.bisect_on_function_error}, "
        f"ReportBatchItemFailures {settings.report_batch_item_failures}, "
        f"on-failure -> s3://{bucket.name if destination else 'none'}"
    )
    return esm
