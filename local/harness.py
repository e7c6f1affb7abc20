"""The local two-account run: moto, both accounts, the three functions, the schedule and the
event source mapping, plus the ledger that proves nothing was lost.

`LocalRun` is used by `local/demo.py` (make demo) and by the end-to-end tests (tests/e2e).
Everything binds to 127.0.0.1; every child process runs in its own process group and is
stopped by `LocalRun.stop()` (also registered with atexit and on SIGINT/SIGTERM by the demo).
"""

from __future__ import annotations

import atexit
import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.config
from botocore.exceptions import ClientError

from local import template as tpl
from local.esm import EventSourceMapping, MappingSettings
from local.runtime_api import FunctionHost, _die_with_parent, _terminate, popen

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("producer", "relay", "target")
# What the local run supplies in place of the secret the example stack files cannot hold.
DEMO_EXTERNAL_ID = "local-demo-external-id-7f3c"
BOTO_CONFIG = botocore.config.Config(retries={"max_attempts": 2, "mode": "standard"},
                                     read_timeout=900, connect_timeout=5, max_pool_connections=32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def env(self) -> dict[str, str]:
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


@dataclass
class RunOptions:
    """What a run may change; everything else comes from the rendered templates."""
    binaries: dict[str, list[str]]  # function -> command (the unzipped release bootstrap)
    project_root: Path = ROOT  # where Pulumi.yaml is (the harness's own tests use a fixture)
    work_dir: Path = ROOT / ".demo"
    source_overrides: dict[str, str] = field(default_factory=dict)  # stack config, e.g. batchSize
    target_overrides: dict[str, str] = field(default_factory=dict)
    echo_logs: bool = False
    retry_base_delay_s: float = 0.02
    batching_window_s: float | None = None  # None = the template's value


class LocalRun:
    def __init__(self, options: RunOptions, progress=print):
        self.options = options
        self.progress = progress
        self.children: list[subprocess.Popen] = []
        self.hosts: dict[str, FunctionHost] = {}
        self.esm: EventSourceMapping | None = None
        self.ledger = Ledger(self)
        self._stopped = False
        self._dlq_stop = threading.Event()
        self._thread_local = threading.local()

    # ------------------------------------------------------------------ start
    def start(self) -> "LocalRun":
        atexit.register(self.stop)
        work = self.options.work_dir
        (work / "logs").mkdir(parents=True, exist_ok=True)
        self.audit_path = work / "moto-audit.jsonl"
        self.audit_path.write_text("")

        self.progress("rendering the Pulumi program (stacks source, target)")
        self.source_template, self.target_template = self._render()
        scfg, tcfg = self.source_config, self.target_config
        self.region = scfg.get("aws:region") or os.environ.get("AWS_REGION") or "eu-west-1"
        self.source_account = scfg["cross-account-relay:sourceAccountId"]
        self.target_account = tcfg["cross-account-relay:targetAccountId"]
        if self.source_account == self.target_account:
            raise tpl.TemplateError("the example configs name the same account twice")

        names = {
            "producer": tpl.literal(self.source_template, "producerFunction", "name"),
            "relay": tpl.literal(self.source_template, "relayFunction", "name"),
            "target": tpl.literal(self.target_template, "targetFunction", "name"),
        }
        self.function_names = names
        self.arns = {
            f: f"arn:aws:lambda:{self.region}:{self.target_account if f == 'target' else self.source_account}:function:{n}"
            for f, n in names.items()
        }
        # Runtime emulators first: moto needs the target's address to route its Invoke.
        for f in FUNCTIONS:
            tmpl = self.target_template if f == "target" else self.source_template
            self.hosts[f] = FunctionHost(
                names[f], self.options.binaries[f], {}, arn=self.arns[f],
                timeout_s=float(tpl.literal(tmpl, f"{f}Function", "timeout", 30)),
                log_path=str(work / "logs" / f"{f}.log"),
                echo=(lambda n, line: print(f"  [{n}] {line}", flush=True)) if self.options.echo_logs else None,
            )
        self._start_moto()
        self._create_accounts()
        self._create_resources()
        self._start_functions()
        self._start_mapping()
        threading.Thread(target=self._collect_dead_letters, name="dlq", daemon=True).start()
        return self

    def _render(self):
        src = {"externalId": DEMO_EXTERNAL_ID, **self.options.source_overrides}
        tgt = {"externalId": DEMO_EXTERNAL_ID, **self.options.target_overrides}
        root = self.options.project_root
        self.source_config = tpl.stack_config(root, "source", src)
        self.target_config = tpl.stack_config(root, "target", tgt)
        return tpl.render(root, "source", src), tpl.render(root, "target", tgt)

    def _start_moto(self) -> None:
        self.moto_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.moto_port}"
        self.cross_account_role_arn = self._cross_account_role_arn()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MOTO_ACCOUNT_ID"}
        env.update({
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "LOCAL_LAMBDA_ROUTES": json.dumps({self.arns["target"]: self.hosts["target"].url}),
            "LOCAL_AUDIT_LOG": str(self.audit_path),
            # moto evaluates no trust policy; these two conditions of the real one are enforced
            # by the launcher so a wrong external id or account fails here too.
            "LOCAL_TRUST_RULES": json.dumps({self.cross_account_role_arn: {
                "external_id": DEMO_EXTERNAL_ID, "principal_account": self.source_account}}),
        })
        log = open(self.options.work_dir / "logs" / "moto.log", "ab")
        proc = popen(
            [sys.executable, str(ROOT / "local" / "moto_launcher.py"), "-H", "127.0.0.1", "-p", str(self.moto_port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        self.children.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"moto exited with {proc.returncode}; see {self.options.work_dir}/logs/moto.log")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/reset-auth", timeout=1)
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
                continue
            break
        else:
            raise RuntimeError("moto did not start within 30 s")
        self.progress(f"moto {self.endpoint} (IAM, STS, Kinesis, SQS, Lambda for two accounts)")

    def _cross_account_role_arn(self) -> str:
        env = tpl.properties(self.source_template, "relayFunction").get("environment", {}).get("variables", {})
        arn = env.get("TARGET_ROLE_ARN")
        if isinstance(arn, str) and arn.startswith("arn:"):
            return arn
        name = tpl.literal(self.target_template, "crossAccountRole", "name")
        return f"arn:aws:iam::{self.target_account}:role/{name}"

    # ------------------------------------------------------------------ clients
    def client(self, service: str, creds: Credentials, **kw):
        return boto3.client(service, region_name=kw.pop("region", self.region), endpoint_url=self.endpoint,
                            aws_access_key_id=creds.access_key_id, aws_secret_access_key=creds.secret_access_key,
                            aws_session_token=creds.session_token, config=BOTO_CONFIG, **kw)

    def _create_accounts(self) -> None:
        self.admins: dict[str, Credentials] = {}
        for account in (self.source_account, self.target_account):
            iam = boto3.client("iam", region_name=self.region, endpoint_url=self.endpoint,
                               aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", config=BOTO_CONFIG)

            def add_account_header(request, _account=account, **_):
                request.headers["x-moto-account-id"] = _account

            iam.meta.events.register("before-send.iam.*", add_account_header)
            iam.create_user(UserName="local-admin")
            key = iam.create_access_key(UserName="local-admin")["AccessKey"]
            creds = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
            who = self.client("sts", creds).get_caller_identity()["Account"]
            if who != account:
                raise RuntimeError(f"moto put the admin of {account} in {who}")
            self.admins[account] = creds
        self.progress(f"accounts: source {self.source_account}, target {self.target_account} (admin users with their own keys)")

    def _create_resources(self) -> None:
        src, tgt = self.source_template, self.target_template
        s_admin, t_admin = self.admins[self.source_account], self.admins[self.target_account]
        # Source account: stream, dead-letter queue, execution roles.
        kinesis = self.client("kinesis", s_admin)
        self.stream_name = tpl.literal(src, "stream", "name")
        props = tpl.properties(src, "stream")
        mode = ((props.get("streamModeDetails") or {}).get("streamMode")) or "PROVISIONED"
        if mode == "ON_DEMAND":
            kinesis.create_stream(StreamName=self.stream_name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        else:
            kinesis.create_stream(StreamName=self.stream_name, ShardCount=int(props.get("shardCount") or 1))
        kinesis.get_waiter("stream_exists").wait(StreamName=self.stream_name, WaiterConfig={"Delay": 0.1})
        self.stream_arn = kinesis.describe_stream_summary(StreamName=self.stream_name)["StreamDescriptionSummary"]["StreamARN"]
        self.shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=self.stream_name)["Shards"]]
        sqs = self.client("sqs", s_admin)
        self.dlq_name = tpl.literal(src, "deadLetterQueue", "name")
        self.dlq_url = sqs.create_queue(QueueName=self.dlq_name)["QueueUrl"]
        self.dlq_arn = sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

        lambda_trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        self.role_arns = {}
        for creds, tmpl, logical in ((s_admin, src, "producerRole"), (s_admin, src, "relayRole"),
                                     (t_admin, tgt, "targetRole")):
            name = tpl.literal(tmpl, logical, "name")
            self.role_arns[logical] = self.client("iam", creds).create_role(
                RoleName=name, AssumeRolePolicyDocument=lambda_trust)["Role"]["Arn"]
        # Target account: the cross-account role and the target function (registered only here).
        t_iam = self.client("iam", t_admin)
        cross_name = self.cross_account_role_arn.rsplit("/", 1)[1]
        declared = tpl.literal(tgt, "crossAccountRole", "name")
        if declared != cross_name:
            raise tpl.TemplateError(f"the relay assumes role {cross_name} but the target stack names it {declared}")
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{self.source_account}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": DEMO_EXTERNAL_ID},
                          "ArnEquals": {"aws:PrincipalArn": self.role_arns["relayRole"]}}}]})
        arn = t_iam.create_role(RoleName=cross_name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        assert arn == self.cross_account_role_arn, (arn, self.cross_account_role_arn)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n# runs locally under local/runtime_api.py\n")
        self.client("lambda", t_admin).create_function(
            FunctionName=self.function_names["target"], Runtime="provided.al2023", Handler="bootstrap",
            Role=self.role_arns["targetRole"], Code={"ZipFile": buf.getvalue()},
            Timeout=int(tpl.literal(tgt, "targetFunction", "timeout", 30)))
        self.progress(f"source {self.source_account}: stream {self.stream_name} ({len(self.shards)} shards), "
                      f"queue {self.dlq_name}, roles {', '.join(self.role_arns)}")
        self.progress(f"target {self.target_account}: role {cross_name} (trusts the relay role + external id), "
                      f"function {self.function_names['target']}")

    def refs(self) -> dict[str, str]:
        """Values the templates' interpolations resolve to in the local run."""
        refs = {
            "stream.name": self.stream_name, "stream.arn": self.stream_arn, "stream.id": self.stream_name,
            "deadLetterQueue.url": self.dlq_url, "deadLetterQueue.id": self.dlq_url,
            "deadLetterQueue.arn": self.dlq_arn, "deadLetterQueue.name": self.dlq_name,
            "crossAccountRole.arn": self.cross_account_role_arn,
            "targetFunction.name": self.function_names["target"], "targetFunction.arn": self.arns["target"],
        }
        for f in FUNCTIONS:
            refs[f"{f}Function.arn"] = self.arns[f]
            refs[f"{f}Function.name"] = self.function_names[f]
        for logical, arn in self.role_arns.items():
            refs[f"{logical}.arn"] = arn
        return refs

    def assume(self, admin: Credentials, role_arn: str, session: str, **kw) -> Credentials:
        c = self.client("sts", admin).assume_role(RoleArn=role_arn, RoleSessionName=session, **kw)["Credentials"]
        return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])

    def _start_functions(self) -> None:
        refs = self.refs()
        self.function_env = {}
        self.execution_creds = {}
        for f in FUNCTIONS:
            tmpl = self.target_template if f == "target" else self.source_template
            account = self.target_account if f == "target" else self.source_account
            env = tpl.function_environment(tmpl, f"{f}Function", refs)
            self.function_env[f] = dict(env)
            # Lambda hands a function its execution role's credentials, in its own account.
            creds = self.assume(self.admins[account], self.role_arns[f"{f}Role"], f"lambda-{f}")
            self.execution_creds[f] = creds
            env.update(creds.env())
            env.update({
                "AWS_LAMBDA_FUNCTION_NAME": self.function_names[f],
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(tpl.literal(tmpl, f"{f}Function", "memorySize", 128)),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_names[f]}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
                "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_ENDPOINT_URL": self.endpoint,
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", "/tmp"),
            })
            self.hosts[f].env = env
            self.hosts[f].start()
        self.progress("functions: " + ", ".join(
            f"{f} ({' '.join(self.options.binaries[f])[-60:]}, {len(self.function_env[f])} template variables)" for f in FUNCTIONS))

    def _start_mapping(self) -> None:
        props = tpl.properties(self.source_template, "relayEventSourceMapping")
        refs = self.refs()
        destination = (((props.get("destinationConfig") or {}).get("onFailure")) or {}).get("destinationArn")
        destination = tpl.resolve(destination, refs, "relayEventSourceMapping.destinationConfig") if destination else None
        if destination and destination != self.dlq_arn:
            raise tpl.TemplateError(f"on-failure destination {destination} is not the dead-letter queue {self.dlq_arn}")
        window = props.get("maximumBatchingWindowInSeconds", 0)
        settings = MappingSettings(
            batch_size=int(props.get("batchSize", 100)),
            batching_window_s=float(window if self.options.batching_window_s is None else self.options.batching_window_s),
            maximum_retry_attempts=int(props.get("maximumRetryAttempts", -1)),
            maximum_record_age_s=int(props.get("maximumRecordAgeInSeconds", -1)),
            bisect_on_function_error=bool(props.get("bisectBatchOnFunctionError", False)),
            report_batch_item_failures="ReportBatchItemFailures" in (props.get("functionResponseTypes") or []),
            on_failure_queue_url=self.dlq_url if destination else None,
            starting_position=props.get("startingPosition", "TRIM_HORIZON"),
            retry_base_delay_s=self.options.retry_base_delay_s,
        )
        self.mapping_settings = settings
        relay_creds = self.execution_creds["relay"]
        self.esm = EventSourceMapping(
            kinesis_factory=lambda: self.client("kinesis", relay_creds),
            sqs_factory=lambda: self.client("sqs", relay_creds),
            stream_name=self.stream_name, stream_arn=self.stream_arn, region=self.region,
            function_arn=self.arns["relay"], function_role_arn=self.role_arns["relayRole"],
            invoke=self.hosts["relay"].invoke, settings=settings, log=self.progress,
        )
        self.esm.start()
        self.progress(
            f"event source mapping: batch {settings.batch_size}, window {settings.batching_window_s}s, "
            f"retries {settings.maximum_retry_attempts}, bisect {settings.bisect_on_function_error}, "
            f"ReportBatchItemFailures {settings.report_batch_item_failures}, on-failure -> {self.dlq_name if destination else 'none'}")

    # ------------------------------------------------------------------ dead letters
    def _collect_dead_letters(self) -> None:
        sqs = self.client("sqs", self.admins[self.source_account])
        while not self._dlq_stop.is_set():
            try:
                resp = sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            except Exception:  # moto going away at shutdown
                if self._dlq_stop.is_set():
                    return
                time.sleep(0.2)
                continue
            for m in resp.get("Messages", []):
                try:
                    letter = json.loads(m["Body"])
                except ValueError:  # counted as an unknown dead letter, never dropped
                    letter = {"unparseable_body": m["Body"][:500]}
                self.ledger.add_dead_letter(letter if isinstance(letter, dict) else {"body": letter})
                sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=m["ReceiptHandle"])

    # ------------------------------------------------------------------ playing the schedule
    def schedule_event(self) -> dict:
        """What EventBridge Scheduler sends: the schedule target's input, if the program sets one."""
        for logical, res in self.source_template["resources"].items():
            if "scheduler" in str(res.get("type", "")).lower():
                target = (res.get("properties") or {}).get("target") or {}
                if isinstance(target.get("input"), str) and "${" not in target["input"]:
                    return json.loads(target["input"])
        return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                "source": "aws.scheduler", "account": self.source_account,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": self.region,
                "resources": [f"arn:aws:scheduler:{self.region}:{self.source_account}:schedule/default/local"],
                "detail": {}}

    def tick(self) -> dict:
        """One scheduled invocation of the producer; its record ids join the ledger."""
        result = self.hosts["producer"].invoke(self.schedule_event())
        if result.function_error:
            self.ledger.producer_errors.append(result.body.decode(errors="replace"))
            return {}
        answer = result.json()
        self.ledger.add_produced(answer.get("record_ids", []))
        return answer

    def put_records(self, records: list[tuple[str, bytes]], explicit_hash_key: str | None = None) -> list[str]:
        """Writes records straight into the stream with the source account's credentials
        (`explicit_hash_key` puts them all on one shard, hence in one batch)."""
        kinesis = self.kinesis_admin()
        seqs = []
        for i in range(0, len(records), 500):
            chunk = records[i:i + 500]
            # PutRecords: at most 5 MiB per call; large records go in smaller calls.
            calls, current, size = [], [], 0
            for pk, data in chunk:
                if current and size + len(data) + len(pk) > 5 * 1024 * 1024 - 1024:
                    calls.append(current)
                    current, size = [], 0
                entry = {"PartitionKey": pk, "Data": data}
                if explicit_hash_key is not None:
                    entry["ExplicitHashKey"] = explicit_hash_key
                current.append(entry)
                size += len(data) + len(pk)
            calls.append(current)
            for entries in calls:
                resp = kinesis.put_records(StreamName=self.stream_name, Records=entries)
                if resp.get("FailedRecordCount"):
                    raise RuntimeError(f"PutRecords refused {resp['FailedRecordCount']} entries")
                seqs.extend(r["SequenceNumber"] for r in resp["Records"])
        self.ledger.add_produced([pk for pk, _ in records])
        return seqs

    def kinesis_admin(self):
        if not hasattr(self._thread_local, "kinesis"):
            self._thread_local.kinesis = self.client("kinesis", self.admins[self.source_account])
        return self._thread_local.kinesis

    # ------------------------------------------------------------------ proofs and audit
    def audit(self) -> list[dict]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines() if line.strip()]

    def relay_assume_role_calls(self) -> int:
        """AssumeRole calls on the cross-account role signed with the relay's own credentials."""
        relay_key = self.execution_creds["relay"].access_key_id
        return sum(1 for e in self.audit() if e["event"] == "assume_role" and e["outcome"] == "ok"
                   and e["role_arn"] == self.cross_account_role_arn and e["caller_access_key"] == relay_key)

    def target_invokes(self) -> list[dict]:
        return [e for e in self.audit() if e["event"] == "invoke" and e["function_arn"] == self.arns["target"]]

    def prove_cross_account(self) -> dict:
        """Invoke of the target with the source account's credentials must not find it."""
        lam = self.client("lambda", self.admins[self.source_account])
        try:
            lam.invoke(FunctionName=self.function_names["target"], Payload=b"{}")
            source_refused = None
        except ClientError as err:
            source_refused = err.response["Error"]["Code"]
        # AssumeRole without the external id is refused (the trust rule the launcher enforces).
        try:
            self.assume(self.execution_creds["relay"], self.cross_account_role_arn, "no-external-id")
            no_external_id = None
        except ClientError as err:
            no_external_id = err.response["Error"]["Code"]
        relay_key = self.execution_creds["relay"].access_key_id
        invokes = self.target_invokes()
        ok_invokes = [e for e in invokes if e["outcome"] in ("ok", "function_error")]
        return {
            "source_credentials_invoke": source_refused,
            "assume_without_external_id": no_external_id,
            "target_invokes": len(ok_invokes),
            "target_invokes_by_target_account_assumed_role": sum(
                1 for e in ok_invokes if e["caller_account"] == self.target_account
                and e["caller_access_key"] != relay_key and e["function_account"] == self.target_account),
        }

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._dlq_stop.set()
        if self.esm:
            self.esm.stop()
        for host in self.hosts.values():
            host.stop()
        for proc in self.children:
            if proc.poll() is None:
                _terminate(proc)


class Ledger:
    """Produced record ids against what the target answered and what reached the dead-letter queue."""

    def __init__(self, run: LocalRun):
        self.run = run
        self.produced: list[str] = []
        self.producer_errors: list[str] = []
        self.dead_letters: list[dict] = []
        self._lock = threading.Lock()
        self._range_cache: dict[tuple, list[str]] = {}

    def add_produced(self, ids) -> None:
        with self._lock:
            self.produced.extend(ids)

    def add_dead_letter(self, message: dict) -> None:
        with self._lock:
            self.dead_letters.append(message)

    def target_lines(self) -> list[dict]:
        return [e for e in list(self.run.hosts["target"].logs) if e.get("message") == "record processed"]

    def _ids_in_range(self, info: dict) -> list[str]:
        """Partition keys (= record ids) of an on-failure batch, read back from the stream as an
        operator would: from startSequenceNumber to endSequenceNumber of the shard."""
        key = (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"])
        if key in self._range_cache:
            return self._range_cache[key]
        kinesis = self.run.kinesis_admin()
        it = kinesis.get_shard_iterator(StreamName=self.run.stream_name, ShardId=info["shardId"],
                                        ShardIteratorType="AT_SEQUENCE_NUMBER",
                                        StartingSequenceNumber=info["startSequenceNumber"])["ShardIterator"]
        end = int(info["endSequenceNumber"])
        ids = []
        while it:
            resp = kinesis.get_records(ShardIterator=it, Limit=1000)
            for r in resp["Records"]:
                if int(r["SequenceNumber"]) > end:
                    it = None
                    break
                ids.append(r["PartitionKey"])
            else:
                it = resp["NextShardIterator"] if resp["Records"] else None
        self._range_cache[key] = ids
        return ids

    def account(self, ids: list[str] | None = None) -> dict:
        """The RESULT numbers for `ids` (default: everything produced in this run)."""
        with self._lock:
            produced = list(self.produced if ids is None else ids)
            letters = list(self.dead_letters)
        wanted = set(produced)
        ok_latency: dict[str, float] = {}
        for line in self.target_lines():
            rid = line.get("record_id")
            if line.get("outcome") == "ok" and rid in wanted and rid not in ok_latency:
                ok_latency[rid] = line.get("latency_ms")
        # Sets, not sums: the same record can reach the queue twice (a retried batch rejected
        # again, SQS at-least-once) and an on-failure range can hold records delivered earlier.
        delivered_ids = set(ok_latency)
        rejected_ids: set[str] = set()
        undeliverable_ids: set[str] = set()
        on_failure_ids: set[str] = set()
        on_failure_batches, other_letters = 0, 0
        for m in letters:
            kind = m.get("kind")
            if kind in ("rejected_by_target", "undeliverable"):
                if m.get("partition_key") in wanted:
                    (rejected_ids if kind == "rejected_by_target" else undeliverable_ids).add(m["partition_key"])
            elif "KinesisBatchInfo" in m:
                batch = wanted.intersection(self._ids_in_range(m["KinesisBatchInfo"]))
                if batch:
                    on_failure_batches += 1
                    on_failure_ids |= batch
            else:
                other_letters += 1
        dead_ids = (rejected_ids | undeliverable_ids | on_failure_ids) - delivered_ids
        latencies = sorted(v for v in ok_latency.values() if isinstance(v, (int, float)))
        return {
            "produced": len(wanted),
            "delivered": len(delivered_ids),
            "rejected": len(rejected_ids - delivered_ids),
            "dead_lettered": len(dead_ids),
            "on_failure_batches": on_failure_batches,
            "lost": len(wanted) - len(delivered_ids) - len(dead_ids),
            "unaccounted_ids": sorted(wanted - delivered_ids - dead_ids),
            "delivered_and_dead_lettered": sorted(delivered_ids & (rejected_ids | undeliverable_ids | on_failure_ids)),
            "duplicate_produced_ids": len(produced) - len(wanted),
            "unknown_dead_letters": other_letters,
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
        }

    def settled(self, ids: list[str] | None = None) -> bool:
        acc = self.account(ids)
        return not acc["unaccounted_ids"]


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    # nearest-rank
    rank = max(1, int(-(-p * len(values) // 100)))
    return round(values[rank - 1], 1)


def result_line(acc: dict, assume_role_calls: int) -> str:
    fmt = lambda v: "na" if v is None else f"{v:.1f}"
    return (f"RESULT produced={acc['produced']} delivered={acc['delivered']} rejected={acc['rejected']} "
            f"dead_lettered={acc['dead_lettered']} lost={acc['lost']} assume_role_calls={assume_role_calls} "
            f"p50_ms={fmt(acc['p50_ms'])} p99_ms={fmt(acc['p99_ms'])}")


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
