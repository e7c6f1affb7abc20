"""`make check-pulumi`'s steps for `relayctl pair` (issue 22): both stacks through the command,
against the real Pulumi CLI, the stand-in provider and moto's STS.

moto (the local run's launcher, on a free port of 127.0.0.1) holds the two accounts of the
example stacks, each with an admin user whose keys are a named profile (`target`, `source`) in
a credentials file of the check's own. `AWS_ENDPOINT_URL_STS` points both relayctl's identity
check and the stand-in provider at it, and PULUMI_AWS_STANDIN_CALLER_ACCOUNT is unset, so the
provider sees the account of the credentials each pulumi run is given, as the real one does.

`check_pulumi.py` runs these after its own steps (the world is empty by then); each returns a
one-line summary or raises PairCheckFailed. What they prove: tools/pulumi/README.md.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from local_run.moto_clients import Credentials, LocalAws
from local_run.moto_server import MotoServer

ROOT = Path(__file__).resolve().parents[2]
RELAYCTL = ROOT / "target/debug/relayctl"
DEPLOY_GUIDE = ROOT / "docs/deploy.md"
REGION = "eu-west-1"
SOURCE_ACCOUNT = "111111111111"  # the committed example stack files' placeholders
TARGET_ACCOUNT = "222222222222"
PROFILES = ["--target-profile", "target", "--source-profile", "source"]
# The deploy guide (docs/deploy.md) shows this command's output; the check compares it (see check_guide).
PAIR_OUTPUT_MARKER = (
    "<!-- relayctl pair up: output of a real run, checked by make check-pulumi (tools/pulumi/check_pair.py) -->"
)
DURATION = re.compile(r"\(\d+\.\d s\)")


class PairCheckFailed(Exception):
    pass


class Workspace(Protocol):
    """What these steps read of check_pulumi's Workspace."""

    @property
    def work(self) -> Path: ...

    @property
    def pulumi_home(self) -> Path: ...

    @property
    def passphrase(self) -> str: ...

    @property
    def project(self) -> Path: ...

    @property
    def world(self) -> Path: ...

    def world_resources(self) -> list: ...


@dataclass
class PairRun:
    """moto, the profiles, and the output of each `relayctl pair` run worth keeping."""

    moto: MotoServer
    credentials_file: Path
    keys: dict[str, Credentials]
    external_id: str
    up_output: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


_run: PairRun | None = None


def pair_run() -> PairRun:
    if _run is None:
        raise PairCheckFailed("the pair steps run in order: the first starts moto")
    return _run


def env(ws: Workspace, backend: str | None, **extra: str) -> dict[str, str]:
    """The environment of a pulumi or relayctl run: only loopback, the profiles file, no
    credentials of the caller's own, no fixed caller account for the stand-in."""
    run = pair_run()
    drop = ("AWS_", "PULUMI_ACCESS_TOKEN", "PULUMI_STACK", "PULUMI_CONFIG", "PULUMI_PROJECT", "PULUMI_BACKEND_URL")
    out = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k != "PULUMI_AWS_STANDIN_CALLER_ACCOUNT"}
    empty_config = ws.work / "aws-config"
    empty_config.touch()
    out.update(
        PULUMI_HOME=str(ws.pulumi_home),
        PULUMI_CONFIG_PASSPHRASE=ws.passphrase,
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_AWS_STANDIN_WORLD=str(ws.world),
        PATH=f"{ROOT / '.tools/bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        AWS_ENDPOINT_URL_STS=run.moto.endpoint,
        AWS_SHARED_CREDENTIALS_FILE=str(run.credentials_file),
        AWS_CONFIG_FILE=str(empty_config),
        AWS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    if backend:
        out["PULUMI_BACKEND_URL"] = backend
    out.update(extra)
    return out


def tail(proc: subprocess.CompletedProcess) -> str:
    return "\n".join((proc.stdout + "\n" + proc.stderr).strip().splitlines()[-40:])


def pulumi(ws: Workspace, backend: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    command = ["pulumi", "--non-interactive", "--color", "never", *args]
    proc = subprocess.run(
        command, cwd=ws.project, env=env(ws, backend), capture_output=True, text=True, timeout=600, check=False
    )
    if ok and proc.returncode != 0:
        raise PairCheckFailed(f"`{' '.join(command)}` failed:\n{tail(proc)}")
    return proc


def relayctl(
    ws: Workspace, backend: str | None, *args: str, ok: bool = True, **extra: str
) -> subprocess.CompletedProcess:
    command = [str(RELAYCTL), "pair", *args]
    proc = subprocess.run(
        command, cwd=ws.project, env=env(ws, backend, **extra), capture_output=True, text=True, timeout=900, check=False
    )
    if ok and proc.returncode != 0:
        raise PairCheckFailed(f"`relayctl pair {' '.join(args)}` failed (exit {proc.returncode}):\n{tail(proc)}")
    if not ok and proc.returncode != 1:
        raise PairCheckFailed(f"`relayctl pair {' '.join(args)}` exited {proc.returncode}, not 1:\n{tail(proc)}")
    return proc


def history(ws: Workspace, backend: str, stack: str) -> list[dict]:
    updates: list[dict] = json.loads(pulumi(ws, backend, "stack", "history", "--json", "--stack", stack).stdout)
    return updates


def config(ws: Workspace, backend: str, stack: str) -> dict[str, str]:
    raw = json.loads(pulumi(ws, backend, "config", "--json", "--stack", stack).stdout)
    return {k.split(":", 1)[1]: v.get("value", "") for k, v in raw.items() if k.startswith("cross-account-relay:")}


def state(ws: Workspace, backend: str, stack: str, show_secrets: bool = False) -> dict[str, dict]:
    args = ["stack", "export", "--stack", stack] + (["--show-secrets"] if show_secrets else [])
    resources = json.loads(pulumi(ws, backend, *args).stdout).get("deployment", {}).get("resources") or []
    return {r["urn"].rsplit("::", 1)[-1]: r for r in resources if not r["type"].startswith("pulumi:pulumi:Stack")}


def init_stack(ws: Workspace, backend: str, stack: str, example: str, external_id: str) -> None:
    pulumi(ws, backend, "stack", "init", stack, "--secrets-provider", "passphrase")
    stack_file = ws.project / f"Pulumi.{stack}.yaml"
    text = (ROOT / f"Pulumi.{example}.yaml").read_text()
    stack_file.write_text(stack_file.read_text() + text[text.index("config:") :])
    pulumi(ws, backend, "config", "set", "--secret", "externalId", external_id, "--stack", stack)
    if example == "target":
        # These pairs end with `relayctl pair destroy`: the idempotency table's deletion protection
        # (on in the example, and refused by the stand-in as by DynamoDB) is checked by
        # check_pulumi.py's own step, not here.
        pulumi(ws, backend, "config", "set", "idempotencyTableDeletionProtection", "false", "--stack", stack)


def shared_backend(ws: Workspace) -> str:
    return f"file://{ws.work / 'state'}"


def expect(condition: bool, message: str, proc: subprocess.CompletedProcess | None = None) -> None:
    if not condition:
        raise PairCheckFailed(message + (f"\n{tail(proc)}" if proc else ""))


# ------------------------------------------------------------------ steps


def refusals(ws: Workspace) -> str:
    """moto and the profiles; the pair `target`/`source` in one backend; every refusal before
    anything runs, each fix line run as printed; --dry-run runs nothing."""
    global _run
    logs = ws.work / "pair-logs"
    logs.mkdir(parents=True, exist_ok=True)
    moto = MotoServer.start(region=REGION, logs_dir=logs, routes={}, trust_rules={}, sync_payload_limit=6_291_456)
    aws = LocalAws(moto.endpoint, REGION)
    keys = {"target": aws.create_admin(TARGET_ACCOUNT), "source": aws.create_admin(SOURCE_ACCOUNT)}
    credentials_file = ws.work / "aws-credentials"
    credentials_file.write_text(
        "".join(
            f"[{name}]\naws_access_key_id = {c.access_key_id}\naws_secret_access_key = {c.secret_access_key}\n"
            for name, c in keys.items()
        )
    )
    _run = PairRun(moto, credentials_file, keys, external_id=f"pair-{ws.passphrase}")
    backend = shared_backend(ws)
    init_stack(ws, backend, "target", "target", _run.external_id)
    init_stack(ws, backend, "source", "source", _run.external_id)

    # --dry-run: the calls, one per line, none run, no secret.
    proc = relayctl(ws, backend, "up", *PROFILES, "--dry-run")
    lines = proc.stdout.splitlines()
    calls = [line for line in lines if not line.startswith("#")]
    expect(
        len(calls) == 13 and all("pulumi --non-interactive" in line for line in calls),
        "--dry-run did not print 13 pulumi calls",
        proc,
    )
    expect(_run.external_id not in proc.stdout, "--dry-run printed the external id")

    def refused(args: list[str], needles: list[str], **extra: str) -> subprocess.CompletedProcess:
        proc = relayctl(ws, backend, *args, ok=False, **extra)
        text = proc.stdout + proc.stderr
        missing = [n for n in needles if n not in text]
        expect(not missing, f"`relayctl pair {' '.join(args)}` was refused without {missing}", proc)
        expect(_run is not None and _run.external_id not in text, "a refusal printed the external id", proc)
        return proc

    def run_fix(proc: subprocess.CompletedProcess) -> str:
        fixes = [line.strip().removeprefix("fix: ") for line in proc.stderr.splitlines() if line.startswith("  fix: ")]
        expect(len(fixes) == 1, f"expected one fix line, got {fixes}", proc)
        done = subprocess.run(
            ["bash", "-c", fixes[0]], cwd=ws.project, env=env(ws, backend), capture_output=True, text=True, check=False
        )
        expect(done.returncode == 0, f"the fix line `{fixes[0]}` failed", done)
        return fixes[0]

    # The target stack given the source account's credentials: refused, naming both accounts.
    refused(
        ["up", "--target-profile", "source", "--source-profile", "source"],
        [f"target stack `target` is pinned to account {TARGET_ACCOUNT}", f"belong to account {SOURCE_ACCOUNT}"],
    )
    # No profile and the environment's keys of the target account: the source is refused.
    target_keys = _run.keys["target"]
    refused(
        ["up"],
        [f"source stack `source` is pinned to account {SOURCE_ACCOUNT}", f"belong to account {TARGET_ACCOUNT}"],
        AWS_ACCESS_KEY_ID=target_keys.access_key_id,
        AWS_SECRET_ACCESS_KEY=target_keys.secret_access_key,
    )
    # The stacks swapped.
    refused(
        ["up", "--target-stack", "source", "--source-stack", "target", *PROFILES], ["was given as the target stack"]
    )
    # Each disagreement, refused with its fix; the fix, run as printed, clears it.
    fixed = []
    for key, value, needle in [
        ("externalId", "another-external-id-0123", "different externalId values (not shown)"),
        ("namePrefix", "other-prefix", "the two stacks disagree on namePrefix"),
        ("targetAccountId", "333333333333", "the two stacks disagree on targetAccountId"),
    ]:
        secret = ["--secret"] if key == "externalId" else []
        pulumi(ws, backend, "config", "set", *secret, key, value, "--stack", "source")
        fixed.append(run_fix(refused(["up", *PROFILES], [needle])))
    expect(config(ws, backend, "source")["namePrefix"] == "cross-account-relay", "the namePrefix fix did not fix it")
    for stack in ("target", "source"):
        expect(history(ws, backend, stack) == [], f"{stack}: a refused pair changed the stack")
    expect(ws.world_resources() == [], "a refused pair created something")
    return f"dry run ({len(calls)} calls, none run); wrong account (profile and environment), swapped stacks, externalId/namePrefix/targetAccountId refused before anything ran, each fixed by its printed line"


def up_one_backend(ws: Workspace) -> str:
    """`relayctl pair up` with both stacks in one backend: target, the source's targetStack,
    source; each run with only its own credentials (the environment holds the source's keys,
    which the target's runs must not see)."""
    run = pair_run()
    backend = shared_backend(ws)
    source_keys = run.keys["source"]
    proc = relayctl(
        ws,
        backend,
        "up",
        *PROFILES,
        AWS_ACCESS_KEY_ID=source_keys.access_key_id,
        AWS_SECRET_ACCESS_KEY=source_keys.secret_access_key,
    )
    run.up_output = proc.stdout
    (ws.work / "pair-up.txt").write_text(proc.stdout)
    order = [line.split(":")[0] + ":" + line.split(":")[1] for line in proc.stdout.splitlines() if ": up:" in line]
    expect(order == ["target: up", "source: up"], f"up ran {order}", proc)
    target_history, source_history = history(ws, backend, "target"), history(ws, backend, "source")
    expect(len(target_history) == 1 and len(source_history) == 1, "each stack should have exactly one update", proc)
    expect(target_history[0]["endTime"] <= source_history[0]["startTime"], "the source started before the target ended")
    source_config = config(ws, backend, "source")
    expect(
        source_config.get("targetStack") == "organization/cross-account-relay/target",
        f"targetStack is {source_config.get('targetStack')}",
    )
    expect(
        not source_config.get("targetRoleArn") and not source_config.get("targetFunctionName"),
        "copied values left beside targetStack",
    )
    outputs = json.loads(pulumi(ws, backend, "stack", "output", "--json", "--stack", "target").stdout)
    relay = state(ws, backend, "source", show_secrets=True)["relayFunction"]["outputs"]["environment"]["variables"]
    expect(relay["TARGET_ROLE_ARN"] == outputs["crossAccountRoleArn"], f"relay's role {relay['TARGET_ROLE_ARN']}")
    expect(f":iam::{TARGET_ACCOUNT}:role/" in outputs["crossAccountRoleArn"], "the role is not in the target account")
    expect(run.external_id not in proc.stdout + proc.stderr, "up printed the external id")
    check_guide(proc.stdout)
    return f"target then source ({len(state(ws, backend, 'target'))} + {len(state(ws, backend, 'source'))} resources), targetStack set, relay reads {outputs['crossAccountRoleArn']}; docs/deploy.md's output matches"


def second_up(ws: Workspace) -> str:
    backend = shared_backend(ws)
    proc = relayctl(ws, backend, "up", *PROFILES)
    lines = proc.stdout.splitlines()
    operations = [line for line in lines if re.match(r"^(target|source): (preview|up): ", line)]
    expect(
        len(operations) == 4 and all(": no changes, " in line for line in operations),
        f"a second up changed something: {operations}",
        proc,
    )
    expect("source: config already reads the target" in lines, "the second up wired the source again", proc)
    for stack in ("target", "source"):
        changes = history(ws, backend, stack)[0]["resourceChanges"]
        expect(set(changes) == {"same"}, f"{stack}: the second update was {changes}")
    return "no config change, both previews and updates 'no changes' (every resource same)"


def destroy_one_backend(ws: Workspace) -> str:
    backend = shared_backend(ws)
    proc = relayctl(ws, backend, "destroy", *PROFILES)
    source, target = history(ws, backend, "source")[0], history(ws, backend, "target")[0]
    expect(source["kind"] == "destroy" and target["kind"] == "destroy", "not destroyed", proc)
    expect(source["endTime"] <= target["startTime"], "the target was destroyed before the source ended")
    order = [line.split(":")[0] for line in proc.stdout.splitlines() if ": destroy:" in line]
    expect(order == ["source", "target"], f"destroy ran {order}", proc)
    for stack in ("target", "source"):
        expect(state(ws, backend, stack) == {}, f"{stack}: state is not empty")
    expect(ws.world_resources() == [], f"the stand-in's world holds {ws.world_resources()}")
    return "source then target: both states empty, nothing left in the stand-in's world"


def two_backends(ws: Workspace) -> str:
    """Stacks in two backends: the source gets config values; a source the program refuses
    stops the pair after the target, and the command it names finishes the job; a second up
    changes nothing; destroy in order."""
    run = pair_run()
    backends = {
        "pair-target": f"file://{ws.work / 'state-target'}",
        "pair-source": f"file://{ws.work / 'state-source'}",
    }
    for stack, backend in backends.items():
        Path(backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        init_stack(ws, backend, stack, stack.removeprefix("pair-"), run.external_id)
    t, s = backends["pair-target"], backends["pair-source"]
    args = [
        "--target-stack",
        "pair-target",
        "--source-stack",
        "pair-source",
        "--target-backend",
        t,
        "--source-backend",
        s,
        *PROFILES,
    ]
    # A source config the program refuses: the target goes up, the source stops the pair.
    pulumi(ws, s, "config", "set", "scheduleExpression", "every 5 minutes", "--stack", "pair-source")
    proc = relayctl(ws, None, "up", *args, ok=False)
    expect("source stack `pair-source` failed:" in proc.stderr, "the failure does not name the source", proc)
    expect(
        "invalid config `cross-account-relay:scheduleExpression`" in proc.stderr,
        "the program's refusal is not shown",
        proc,
    )
    expect(
        "done before it: target stack `pair-target` is up" in proc.stderr,
        "the failure does not say the target is up",
        proc,
    )
    expect(
        len(history(ws, t, "pair-target")) == 1 and history(ws, s, "pair-source") == [], "wrong stacks changed", proc
    )
    lines = proc.stderr.splitlines()
    next_command = lines[lines.index("run next, once the cause is fixed:") + 1].strip()
    expect(next_command.startswith("relayctl pair up "), f"next command {next_command!r}", proc)
    pulumi(ws, s, "config", "set", "scheduleExpression", "rate(5 minutes)", "--stack", "pair-source")
    proc = relayctl(ws, None, *shlex.split(next_command)[2:])
    source_config = config(ws, s, "pair-source")
    outputs = json.loads(pulumi(ws, t, "stack", "output", "--json", "--stack", "pair-target").stdout)
    expect(
        source_config.get("targetRoleArn") == outputs["crossAccountRoleArn"], "targetRoleArn is not the target's output"
    )
    expect(
        source_config.get("targetFunctionName") == outputs["targetFunctionArn"], "targetFunctionName is not the output"
    )
    expect(not source_config.get("targetStack"), "a StackReference across backends")
    relay = state(ws, s, "pair-source", show_secrets=True)["relayFunction"]["outputs"]["environment"]["variables"]
    expect(relay["TARGET_FUNCTION_NAME"] == outputs["targetFunctionArn"], "the relay does not invoke the target")
    again = relayctl(ws, None, "up", *args)
    expect(again.stdout.count(": no changes, ") == 4, "a second up across backends changed something", again)
    pair_outputs = json.loads(relayctl(ws, None, "outputs", *args).stdout)
    expect(pair_outputs["target"]["crossAccountRoleArn"] == outputs["crossAccountRoleArn"], "outputs: wrong target")
    expect("streamName" in pair_outputs["source"], "outputs: no source outputs")
    relayctl(ws, None, "destroy", *args)
    expect(
        history(ws, s, "pair-source")[0]["endTime"] <= history(ws, t, "pair-target")[0]["startTime"], "destroy order"
    )
    expect(ws.world_resources() == [], f"the stand-in's world holds {ws.world_resources()}")
    run.moto.stop()
    return "a refused source stops the pair after the target, its `run next` command finishes it; config values copied; no changes the second time; outputs; destroyed in order"


def guide_block() -> list[str]:
    """The fenced block after PAIR_OUTPUT_MARKER."""
    text = DEPLOY_GUIDE.read_text()
    if PAIR_OUTPUT_MARKER not in text:
        raise PairCheckFailed(f"docs/deploy.md lacks the marker {PAIR_OUTPUT_MARKER}")
    after = text.split(PAIR_OUTPUT_MARKER, 1)[1].lstrip("\n")
    if not after.startswith("```"):
        raise PairCheckFailed("docs/deploy.md: a ``` block must follow the pair output marker")
    body = after.split("\n", 1)[1]
    return body.split("\n```", 1)[0].splitlines()


def check_guide(output: str) -> None:
    """The deploy guide shows `$ relayctl pair up --target-profile target --source-profile source`
    and what it printed, durations aside."""
    shown = [DURATION.sub("(… s)", line) for line in guide_block()]
    actual = ["$ relayctl pair up " + " ".join(PROFILES)] + [
        DURATION.sub("(… s)", line) for line in output.splitlines()
    ]
    if shown != actual:
        raise PairCheckFailed(
            "docs/deploy.md's `relayctl pair up` output differs from a real run; the run's output is in "
            ".cache/check-pulumi/pair-up.txt (durations may differ):\n" + "\n".join(actual)
        )


STEPS = [
    ("pair: refusals", refusals),
    ("pair: up, one backend", up_one_backend),
    ("pair: up again", second_up),
    ("pair: destroy", destroy_one_backend),
    ("pair: two backends", two_backends),
]


def stop() -> None:
    """Stops moto if a step left it running."""
    if _run is not None:
        _run.moto.stop()
