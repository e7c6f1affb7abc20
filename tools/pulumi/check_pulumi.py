"""`make check-pulumi`: both stacks through the real Pulumi CLI and YAML runtime.

    python tools/pulumi/check_pulumi.py --pulumi-home DIR --work DIR

The CLI and its YAML language host are built from their Go modules (`make check-pulumi`
does it, pins in tools/pulumi/); the `aws` provider is the stand-in of tools/pulumi/standin,
installed into the private PULUMI_HOME, serving the pinned pulumi-aws schema. The committed
`Pulumi.yaml` is copied byte for byte into a project folder under --work (inside the
repository, so its `cargo run -p infra` compiler finds the workspace), with a `target` link so
`fn::fileArchive` finds the functions' zips. The backend is a local folder; stacks are
`dev-target` and `dev-source`, configured from the committed example stack files.

Each step prints one line; the first failure prints the command's output and exits 1. What
this proves and what it does not: tools/pulumi/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import check_pair

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "cross-account-relay"
ORGANIZATION = "organization"  # what a file backend calls every stack's organization
SOURCE_ACCOUNT = "111111111111"  # the committed example stack files' placeholders
TARGET_ACCOUNT = "222222222222"


class CheckFailed(Exception):
    pass


@dataclass(frozen=True)
class Stack:
    name: str
    example: str  # the committed Pulumi.<example>.yaml it is configured from
    account: str  # the account whose "credentials" the stand-in provider sees

    @property
    def qualified(self) -> str:
        return f"{ORGANIZATION}/{PROJECT}/{self.name}"


TARGET = Stack("dev-target", "target", TARGET_ACCOUNT)
SOURCE = Stack("dev-source", "source", SOURCE_ACCOUNT)


@dataclass(frozen=True)
class Workspace:
    """Where one run of the check happens; everything in it is made anew by `prepare`."""

    work: Path
    pulumi_home: Path
    passphrase: str
    external_id: str

    @property
    def project(self) -> Path:
        return self.work / "project"

    @property
    def world(self) -> Path:
        return self.work / "world.json"

    def prepare(self) -> None:
        if self.work.exists():
            shutil.rmtree(self.work)
        self.project.mkdir(parents=True)
        (self.work / "state").mkdir()
        shutil.copyfile(ROOT / "Pulumi.yaml", self.project / "Pulumi.yaml")
        (self.project / "target").symlink_to(ROOT / "target")

    def env(self, account: str) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("PULUMI_ACCESS_TOKEN", "PULUMI_STACK", "PULUMI_CONFIG", "PULUMI_PROJECT"):
            env.pop(name, None)
        env.update(
            PULUMI_HOME=str(self.pulumi_home),
            PULUMI_BACKEND_URL=f"file://{self.work / 'state'}",
            PULUMI_CONFIG_PASSPHRASE=self.passphrase,
            PULUMI_SKIP_UPDATE_CHECK="true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
            PULUMI_AWS_STANDIN_WORLD=str(self.world),
            PULUMI_AWS_STANDIN_CALLER_ACCOUNT=account,
            PATH=f"{ROOT / '.tools/bin'}{os.pathsep}{env.get('PATH', '')}",
        )
        return env

    def pulumi(
        self, stack: Stack | None, *args: str, account: str | None = None, ok: bool = True
    ) -> subprocess.CompletedProcess:
        command = ["pulumi", "--color", "never", "--non-interactive", *args]
        if stack is not None:
            command += ["--stack", stack.name]
        proc = subprocess.run(
            command,
            cwd=self.project,
            env=self.env(account or (stack.account if stack else SOURCE_ACCOUNT)),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if ok and proc.returncode != 0:
            raise CheckFailed(f"`{' '.join(command)}` failed (exit {proc.returncode}):\n{tail(proc)}")
        if not ok and proc.returncode == 0:
            raise CheckFailed(f"`{' '.join(command)}` succeeded but should have failed:\n{tail(proc)}")
        return proc

    def pulumi_json(self, stack: Stack, *args: str) -> dict:
        return json.loads(self.pulumi(stack, *args).stdout)

    def world_resources(self) -> list:
        if not self.world.exists():
            return []
        data = json.loads(self.world.read_text() or "{}")
        return sorted(data.get("resources", data) if isinstance(data, dict) else data)


def tail(proc: subprocess.CompletedProcess, lines: int = 40) -> str:
    text = (proc.stdout + "\n" + proc.stderr).strip().splitlines()
    return "\n".join(text[-lines:])


# ------------------------------------------------------------------ what the engine holds


def state_resources(ws: Workspace, stack: Stack, show_secrets: bool = False) -> list[dict]:
    args = ["stack", "export"] + (["--show-secrets"] if show_secrets else [])
    deployment = ws.pulumi_json(stack, *args).get("deployment", {})
    return deployment.get("resources") or []


def logical(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def by_logical_name(resources: list[dict]) -> dict[str, dict]:
    return {logical(r["urn"]): r for r in resources if not r["type"].startswith("pulumi:pulumi:Stack")}


def program_resources(ws: Workspace, stack: Stack) -> set[str]:
    """The resources the program renders for the stack's config, run as the YAML runtime runs it."""
    config = ws.pulumi_json(stack, "config", "--show-secrets", "--json")
    env = ws.env(stack.account)
    env.update(
        PULUMI_STACK=stack.name,
        PULUMI_PROJECT=PROJECT,
        PULUMI_ORGANIZATION=ORGANIZATION,
        PULUMI_ROOT_DIRECTORY=str(ws.project),
        PULUMI_CONFIG=json.dumps({k: v["value"] for k, v in config.items()}),
    )
    proc = subprocess.run([str(ROOT / "target/debug/infra")], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CheckFailed(f"the program failed for {stack.name}:\n{proc.stderr}")
    return set(json.loads(proc.stdout)["resources"])


def expect_in_state(ws: Workspace, stack: Stack) -> int:
    expected = program_resources(ws, stack)
    held = set(by_logical_name(state_resources(ws, stack)))
    # The engine adds nothing the program did not ask for, and loses nothing it did.
    if held != expected:
        raise CheckFailed(
            f"{stack.name}: state differs from the program: missing {sorted(expected - held)}, extra {sorted(held - expected)}"
        )
    return len(held)


# ------------------------------------------------------------------ steps


def init(ws: Workspace) -> str:
    for stack in (TARGET, SOURCE):
        ws.pulumi(None, "stack", "init", stack.name, "--secrets-provider", "passphrase", account=stack.account)
        stack_file = ws.project / f"Pulumi.{stack.name}.yaml"
        salt = stack_file.read_text()
        example = (ROOT / f"Pulumi.{stack.example}.yaml").read_text()
        stack_file.write_text(salt + example[example.index("config:") :])
        ws.pulumi(stack, "config", "set", "--secret", "externalId", ws.external_id)
        stored = stack_file.read_text()
        if ws.external_id in stored or "secure:" not in stored:
            raise CheckFailed(f"{stack_file.name}: externalId is not stored encrypted")
    return f"stacks {TARGET.name}, {SOURCE.name} from Pulumi.target.yaml / Pulumi.source.yaml; externalId set with --secret"


def create_steps(ws: Workspace, stack: Stack) -> int:
    preview = ws.pulumi_json(stack, "preview", "--json")
    steps = preview.get("steps", [])
    creates = {logical(s["urn"]) for s in steps if s.get("op") == "create"}
    missing = program_resources(ws, stack) - creates
    if missing:
        raise CheckFailed(f"{stack.name}: preview plans no create for {sorted(missing)}")
    return len(creates)


def preview(ws: Workspace) -> str:
    counts = [f"{s.name} {create_steps(ws, s)} to create" for s in (TARGET, SOURCE)]
    if ws.world_resources():
        raise CheckFailed("preview created something in the stand-in's world")
    return ", ".join(counts)


def up(ws: Workspace) -> str:
    held = []
    for stack in (TARGET, SOURCE):
        ws.pulumi(stack, "up", "--yes", "--skip-preview")
        held.append(f"{stack.name} {expect_in_state(ws, stack)} resources")
    for stack in (TARGET, SOURCE):
        ws.pulumi(stack, "preview", "--expect-no-changes")
    return ", ".join(held) + "; preview --expect-no-changes clean on both"


def stack_reference(ws: Workspace) -> str:
    # Rename the cross-account role first, so the value the source reads through the
    # reference differs from the one in its example config: the check then tells them apart.
    ws.pulumi(TARGET, "config", "set", "crossAccountRoleName", "dev-invoker-renamed")
    ws.pulumi(TARGET, "up", "--yes", "--skip-preview")
    outputs = ws.pulumi_json(TARGET, "stack", "output", "--json", "--show-secrets")
    if not outputs["crossAccountRoleArn"].endswith(":role/dev-invoker-renamed"):
        raise CheckFailed(f"target output crossAccountRoleArn is {outputs['crossAccountRoleArn']}")
    ws.pulumi(SOURCE, "config", "set", "targetStack", TARGET.qualified)
    ws.pulumi(SOURCE, "config", "rm", "targetRoleArn")
    ws.pulumi(SOURCE, "config", "rm", "targetFunctionName")
    ws.pulumi(SOURCE, "up", "--yes", "--skip-preview")
    relay = by_logical_name(state_resources(ws, SOURCE, show_secrets=True))["relayFunction"]
    variables = relay["outputs"]["environment"]["variables"]
    expected = {
        "TARGET_ROLE_ARN": outputs["crossAccountRoleArn"],
        "TARGET_FUNCTION_NAME": outputs["targetFunctionArn"],
        "TARGET_REGION": outputs["targetRegion"],
    }
    wrong = {k: variables.get(k) for k, v in expected.items() if variables.get(k) != v}
    if wrong:
        raise CheckFailed(f"relay environment does not follow the target stack: {wrong}, expected {expected}")
    policy = json.loads(by_logical_name(state_resources(ws, SOURCE))["relayRolePolicy"]["outputs"]["policy"])
    assume = next(s for s in policy["Statement"] if s["Sid"] == "AssumeTargetRoleOnly")
    if assume["Resource"] != [outputs["crossAccountRoleArn"]]:
        raise CheckFailed(f"relay may assume {assume['Resource']}, not the target's role")
    ws.pulumi(SOURCE, "preview", "--expect-no-changes")
    return f"targetStack={TARGET.qualified}: relay environment and AssumeRole grant follow the target's outputs ({outputs['crossAccountRoleArn']})"


def replacement(ws: Workspace) -> str:
    def mapping() -> dict:
        return by_logical_name(state_resources(ws, SOURCE))["relayEventSourceMapping"]

    before = mapping()
    ws.pulumi(SOURCE, "config", "set", "startingPosition", "LATEST")
    steps = ws.pulumi_json(SOURCE, "preview", "--json").get("steps", [])
    ops = [s.get("op") for s in steps if logical(s["urn"]) == "relayEventSourceMapping"]
    # deleteBeforeReplace: the engine plans the old mapping's deletion before the new one.
    if ops[:1] != ["replace"] and "delete-replaced" not in ops:
        raise CheckFailed(f"startingPosition change planned as {ops}, not a replacement")
    ws.pulumi(SOURCE, "up", "--yes", "--skip-preview")
    after = mapping()
    if after["id"] == before["id"] or after["outputs"].get("startingPosition") != "LATEST":
        raise CheckFailed("the event source mapping was not replaced")
    ws.pulumi(SOURCE, "preview", "--expect-no-changes")
    return f"startingPosition TRIM_HORIZON -> LATEST replaced the mapping ({before['id'][:8]}… -> {after['id'][:8]}…), no conflict with the old one"


def secrets_stay_encrypted(ws: Workspace) -> str:
    checked = []
    for stack in (TARGET, SOURCE):
        exported = ws.pulumi(stack, "stack", "export").stdout
        if ws.external_id in exported:
            raise CheckFailed(f"{stack.name}: the external id appears in plaintext in the exported state")
        if "ciphertext" not in exported:
            raise CheckFailed(f"{stack.name}: no secret in the exported state at all")
        checked.append(f"{stack.name} ({len(exported)} bytes)")
    return "external id never in plaintext in " + ", ".join(checked)


def refusals(ws: Workspace) -> str:
    broken = Stack("dev-broken", "source", SOURCE_ACCOUNT)
    ws.pulumi(None, "stack", "init", broken.name, "--secrets-provider", "passphrase", account=broken.account)
    stack_file = ws.project / f"Pulumi.{broken.name}.yaml"
    example = (ROOT / "Pulumi.source.yaml").read_text()
    stack_file.write_text(stack_file.read_text() + example[example.index("config:") :])
    cases = [
        # A key Pulumi.yaml declares without a default: Pulumi itself refuses, naming it.
        ("missing externalId", [], ["missing configuration value 'externalId'"]),
        # A key only the program knows is needed (unless targetStack is set): its own message.
        (
            "missing targetRoleArn",
            [["config", "set", "--secret", "externalId", ws.external_id], ["config", "rm", "targetRoleArn"]],
            [
                "missing config `cross-account-relay:targetRoleArn`",
                "pulumi config set --stack dev-broken targetRoleArn",
            ],
        ),
        (
            "invalid scheduleExpression",
            [
                ["config", "set", "targetRoleArn", f"arn:aws:iam::{TARGET_ACCOUNT}:role/x"],
                ["config", "set", "scheduleExpression", "every 5 minutes"],
            ],
            [
                "invalid config `cross-account-relay:scheduleExpression`",
                "pulumi config set --stack dev-broken scheduleExpression",
            ],
        ),
        (
            "assumeRoleSessionSeconds above the role-chaining hour",
            [
                ["config", "set", "scheduleExpression", "rate(5 minutes)"],
                ["config", "set", "assumeRoleSessionSeconds", "7200"],
            ],
            ["invalid config `cross-account-relay:assumeRoleSessionSeconds`", "between 900 and 3600"],
        ),
    ]
    for title, setup, needles in cases:
        for args in setup:
            ws.pulumi(broken, *args)
        proc = ws.pulumi(broken, "preview", ok=False)
        output = proc.stdout + proc.stderr
        missing = [n for n in needles if n not in output]
        if missing or "panicked" in output or "goroutine " in output:
            raise CheckFailed(f"{title}: preview output lacks {missing} or is not clean:\n{tail(proc)}")
    # The provider refuses the other account's credentials (allowedAccountIds).
    proc = ws.pulumi(TARGET, "preview", account=SOURCE_ACCOUNT, ok=False)
    if f"AWS account ID not allowed: {SOURCE_ACCOUNT}" not in proc.stdout + proc.stderr:
        raise CheckFailed(f"target stack previewed with source credentials:\n{tail(proc)}")
    ws.pulumi(broken, "stack", "rm", "--yes", "--force")
    return f"{len(cases)} bad configs stop preview naming the key and the `pulumi config set` fix; the target stack refuses the source account's credentials"


def destroy(ws: Workspace) -> str:
    for stack in (SOURCE, TARGET):
        ws.pulumi(stack, "destroy", "--yes", "--skip-preview")
        left = state_resources(ws, stack)
        if left:
            raise CheckFailed(f"{stack.name}: state still holds {[r['urn'] for r in left]}")
    left = ws.world_resources()
    if left:
        raise CheckFailed(f"the stand-in's world still holds {left}")
    return "source then target: both states empty, nothing left in the stand-in's world"


# ------------------------------------------------------------------ what the world holds


def standin(ws: Workspace, *args: str) -> str:
    """Runs the installed stand-in on the world, as the data path or an operator acts on AWS."""
    binaries = sorted(ws.pulumi_home.glob("plugins/resource-aws-v*/pulumi-resource-aws"))
    if not binaries:
        raise CheckFailed(f"no stand-in aws plugin installed under {ws.pulumi_home}/plugins")
    proc = subprocess.run(
        [str(binaries[-1]), *args], env=ws.env(SOURCE.account), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise CheckFailed(f"pulumi-resource-aws {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def dead_letter_bucket(ws: Workspace) -> str:
    return by_logical_name(state_resources(ws, SOURCE))["deadLetterBucket"]["outputs"]["bucket"]


def write_dead_letter(ws: Workspace) -> tuple[str, str]:
    """Puts a dead letter where the relay puts one (its prefix from `infra --dead-letter-layout`)."""
    layout = json.loads(
        subprocess.run(
            [str(ROOT / "target/debug/infra"), "--dead-letter-layout"], capture_output=True, text=True, check=True
        ).stdout
    )
    bucket = dead_letter_bucket(ws)
    key = f"{layout['relay_prefix']}rejected_by_target/shardId-000000000000/49590338271490256608559692538361571095921575989136588898.json"
    standin(ws, "put-object", bucket, key)
    return bucket, key


def replaced(steps: list[dict], name: str) -> bool:
    ops = {s.get("op") for s in steps if logical(s["urn"]) == name}
    return bool(ops & {"replace", "create-replacement", "delete-replaced"})


# S3's refusal to delete a bucket that holds objects, as the provider reports it.
BUCKET_NOT_EMPTY = "BucketNotEmpty: The bucket you tried to delete is not empty"
BUCKET_SETTINGS = (
    "deadLetterBucketEncryption",
    "deadLetterBucketPublicAccess",
    "deadLetterBucketPolicy",
    "deadLetterBucketLifecycle",
)


def alarm_email_replacement(ws: Workspace) -> str:
    def subscription() -> dict:
        return by_logical_name(state_resources(ws, TARGET))["alarmEmailSubscription"]

    ws.pulumi(TARGET, "config", "set", "alarmEmail", "ops-a@example.com")
    ws.pulumi(TARGET, "up", "--yes", "--skip-preview")
    before = subscription()
    # SNS has no way to change a subscription's address: a new one is created (unconfirmed: a
    # confirmation mail goes out again) and the old one deleted.
    ws.pulumi(TARGET, "config", "set", "alarmEmail", "ops-b@example.com")
    steps = ws.pulumi_json(TARGET, "preview", "--json").get("steps", [])
    if not replaced(steps, "alarmEmailSubscription"):
        ops = [s.get("op") for s in steps if logical(s["urn"]) == "alarmEmailSubscription"]
        raise CheckFailed(f"an alarmEmail change was planned as {ops}, not a replacement of the subscription")
    ws.pulumi(TARGET, "up", "--yes", "--skip-preview")
    after = subscription()
    if after["id"] == before["id"] or after["outputs"].get("endpoint") != "ops-b@example.com":
        raise CheckFailed(f"the subscription was not replaced: {before['id']} -> {after['id']}")
    ws.pulumi(TARGET, "preview", "--expect-no-changes")
    return f"alarmEmail ops-a -> ops-b replaced the subscription ({before['id'][-12:]} -> {after['id'][-12:]})"


def bucket_rename(ws: Workspace) -> str:
    bucket, key = write_dead_letter(ws)
    prefix = ws.pulumi(SOURCE, "config", "get", "namePrefix").stdout.strip()
    ws.pulumi(SOURCE, "config", "set", "namePrefix", "dev-renamed")
    steps = ws.pulumi_json(SOURCE, "preview", "--json").get("steps", [])
    not_replaced = [n for n in ("deadLetterBucket", *BUCKET_SETTINGS) if not replaced(steps, n)]
    if not_replaced:
        raise CheckFailed(f"a namePrefix change does not replace {not_replaced}")
    # The bucket's name is fixed, so the old bucket is deleted first: S3 refuses, it holds a
    # dead letter and forceDestroy is false.
    proc = ws.pulumi(SOURCE, "up", "--yes", "--skip-preview", ok=False)
    if BUCKET_NOT_EMPTY not in proc.stdout + proc.stderr:
        raise CheckFailed(f"the rename failed, but not with S3's BucketNotEmpty:\n{tail(proc)}")
    if key not in standin(ws, "list-objects", bucket).split():
        raise CheckFailed(f"the dead letter is gone from {bucket}")
    # What happened on the way: every fixed name is replaced delete-first, and what depends on
    # a replaced resource and must be replaced with it is deleted before it. The engine keeps
    # those in the state as pendingReplacement: deleted, not yet created again.
    pending = sorted(logical(r["urn"]) for r in state_resources(ws, SOURCE) if r.get("pendingReplacement"))
    missing = [n for n in BUCKET_SETTINGS if n not in pending]
    if missing:
        raise CheckFailed(f"the bucket's settings {missing} were not deleted before the bucket; pending: {pending}")
    ws.pulumi(SOURCE, "config", "set", "namePrefix", prefix)
    ws.pulumi(SOURCE, "up", "--yes", "--skip-preview")
    ws.pulumi(SOURCE, "preview", "--expect-no-changes")
    if dead_letter_bucket(ws) != bucket or key not in standin(ws, "list-objects", bucket).split():
        raise CheckFailed("after the rename was undone the bucket or its dead letter is not the old one")
    return (
        f"namePrefix -> dev-renamed plans the bucket and its 4 settings as replacements; up refused ({BUCKET_NOT_EMPTY}), "
        f"the dead letter kept; deleted before the refusal and left pending replacement: {', '.join(pending)}; "
        "namePrefix back and up restored them"
    )


def destroy_refused_with_dead_letters(ws: Workspace) -> str:
    bucket, key = write_dead_letter(ws)
    proc = ws.pulumi(SOURCE, "destroy", "--yes", "--skip-preview", ok=False)
    if BUCKET_NOT_EMPTY not in proc.stdout + proc.stderr:
        raise CheckFailed(f"destroy failed, but not with S3's BucketNotEmpty:\n{tail(proc)}")
    # The key alone does not do it: the provider reads forceDestroy from the state.
    ws.pulumi(SOURCE, "config", "set", "deadLetterBucketForceDestroy", "true")
    proc = ws.pulumi(SOURCE, "destroy", "--yes", "--skip-preview", ok=False)
    if BUCKET_NOT_EMPTY not in proc.stdout + proc.stderr:
        raise CheckFailed(f"destroy before an up recorded forceDestroy did not fail with BucketNotEmpty:\n{tail(proc)}")
    if key not in standin(ws, "list-objects", bucket).split():
        raise CheckFailed(f"a refused destroy lost the dead letter in {bucket}")
    ws.pulumi(SOURCE, "up", "--yes", "--skip-preview")
    state = by_logical_name(state_resources(ws, SOURCE))["deadLetterBucket"]
    if state["outputs"].get("forceDestroy") is not True:
        raise CheckFailed(f"up did not record forceDestroy: {state['outputs'].get('forceDestroy')}")
    return (
        f"a dead letter in {bucket}: destroy refused ({BUCKET_NOT_EMPTY}), refused again with "
        "deadLetterBucketForceDestroy set but not yet applied; up recorded it (the destroy step then empties and deletes the bucket)"
    )


# DynamoDB's refusal to delete a table whose deletion protection is on, as the provider reports it.
TABLE_PROTECTED = "Resource cannot be deleted as it is currently protected against deletion"


def destroy_refused_with_deletion_protection(ws: Workspace) -> str:
    """The example target stack keeps the idempotency table's deletion protection on (the default):
    destroy is refused until an `up` has turned it off, as docs/deploy.md tells an operator."""

    def table() -> dict:
        return by_logical_name(state_resources(ws, TARGET))["idempotencyTable"]

    name = table()["outputs"]["name"]
    proc = ws.pulumi(TARGET, "destroy", "--yes", "--skip-preview", ok=False)
    if TABLE_PROTECTED not in proc.stdout + proc.stderr:
        raise CheckFailed(f"destroy failed, but not with DynamoDB's deletion protection:\n{tail(proc)}")
    # The key alone does not do it: the flag is the table's own, set by an update.
    ws.pulumi(TARGET, "config", "set", "idempotencyTableDeletionProtection", "false")
    proc = ws.pulumi(TARGET, "destroy", "--yes", "--skip-preview", ok=False)
    if TABLE_PROTECTED not in proc.stdout + proc.stderr:
        raise CheckFailed(f"destroy before an up turned protection off was not refused:\n{tail(proc)}")
    if table()["outputs"]["name"] != name:
        raise CheckFailed(f"a refused destroy replaced the table {name}")
    ws.pulumi(TARGET, "up", "--yes", "--skip-preview")
    if table()["outputs"].get("deletionProtectionEnabled") is not False:
        raise CheckFailed(f"up did not turn deletion protection off: {table()['outputs']}")
    return (
        f"table {name}: destroy refused (ValidationException: {TABLE_PROTECTED}), refused again with "
        "idempotencyTableDeletionProtection false but not yet applied; up turned it off in place (the destroy step then deletes it)"
    )


# The guide a team follows to write a target of its own, and the crate it has them make.
GUIDE = ROOT / "docs/target-library.md"
OWN_TARGET = "my-target"


def fenced(text: str, language: str) -> list[str]:
    """The bodies of the guide's ```<language> blocks, in order."""
    blocks: list[str] = []
    body: list[str] | None = None
    for line in text.splitlines():
        if body is None:
            if line.strip() == f"```{language}":
                body = []
        elif line.strip() == "```":
            blocks.append("\n".join(body) + "\n")
            body = None
        else:
            body.append(line)
    return blocks


def guide_recipe() -> tuple[dict[str, str], list[str], str]:
    """What "Start a target" says: the crate's files (each block opens with a comment naming its
    path), the x86_64 build command, and the `targetArtifact` value."""
    text = GUIDE.read_text()
    files = {}
    for block in fenced(text, "toml") + fenced(text, "rust"):
        first, _, _ = block.partition("\n")
        path = first.lstrip("#/ ").strip()
        if path.startswith(f"{OWN_TARGET}/"):
            files[path] = block
    shell = [line.split("#")[0].split() for block in fenced(text, "sh") for line in block.splitlines()]
    builds = [words for words in shell if words[:3] == ["cargo", "lambda", "build"] and "--arm64" not in words]
    settings = [words for words in shell if words[:4] == ["pulumi", "config", "set", "targetArtifact"]]
    expected = {f"{OWN_TARGET}/Cargo.toml", f"{OWN_TARGET}/src/main.rs"}
    if set(files) != expected or len(builds) != 1 or len(settings) != 1:
        raise CheckFailed(
            f'{GUIDE.relative_to(ROOT)}: "Start a target" should give the files {sorted(expected)} (found '
            f"{sorted(files)}), one x86_64 `cargo lambda build` (found {len(builds)}) and one "
            f"`pulumi config set targetArtifact` (found {len(settings)})"
        )
    return files, builds[0], settings[0][4]


def own_target(ws: Workspace) -> str:
    """docs/target-library.md's "Start a target", as written: its Cargo.toml and main.rs become a
    crate of their own beside the project (outside this workspace, with the library as the path
    dependency the guide names), its build command builds it, its `targetArtifact` value points
    the target stack at the zip, and `up` deploys it; then the key is removed and the sample
    target comes back."""
    files, build, artifact = guide_recipe()
    # Outside this repository (else cargo would take the crate for a member of its workspace), at
    # a path fixed per clone, so that a second run finds the library's units compiled.
    clone = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    own = Path(tempfile.gettempdir()) / f"check-pulumi-own-target-{clone}"
    shutil.rmtree(own, ignore_errors=True)
    own.mkdir()
    try:
        # The guide's `path = "../cross-account-relay/functions/target-lib"`: this repository.
        (own / "cross-account-relay").symlink_to(ROOT)
        for path, body in files.items():
            (own / path).parent.mkdir(parents=True, exist_ok=True)
            (own / path).write_text(body)
        crate = own / OWN_TARGET
        # Cargo's target folder is this workspace's, so the dependencies a previous run compiled
        # are reused; the lock file pins them at this workspace's versions.
        (crate / "target").symlink_to(ROOT / "target")
        shutil.copyfile(ROOT / "Cargo.lock", crate / "Cargo.lock")
        # The guide's `targetArtifact` is relative to the project folder: `../my-target/...`.
        (ws.work / OWN_TARGET).symlink_to(crate)
        started = time.monotonic()
        proc = subprocess.run(build, cwd=crate, env=ws.env(TARGET.account), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise CheckFailed(
                f"`{' '.join(build)}` in the guide's crate failed (exit {proc.returncode}):\n{tail(proc)}"
            )
        built_s = time.monotonic() - started
        zip_path = (ws.project / artifact).resolve()
        with zipfile.ZipFile(zip_path) as archive:
            if "bootstrap" not in archive.namelist():
                raise CheckFailed(f"{zip_path} holds {archive.namelist()}, not the `bootstrap` Lambda runs")

        def code() -> dict:
            return by_logical_name(state_resources(ws, TARGET))["targetFunction"]["inputs"]["code"]

        sample = code()
        ws.pulumi(TARGET, "config", "set", "targetArtifact", artifact)
        ws.pulumi(TARGET, "up", "--yes", "--skip-preview")
        deployed = code()
        if deployed.get("path") != artifact or deployed.get("hash") == sample.get("hash"):
            raise CheckFailed(f"targetFunction's code after up is {deployed}, not the guide's zip {artifact}")
        ws.pulumi(TARGET, "preview", "--expect-no-changes")
        ws.pulumi(TARGET, "config", "rm", "targetArtifact")
        ws.pulumi(TARGET, "up", "--yes", "--skip-preview")
        if code().get("hash") != sample.get("hash"):
            raise CheckFailed(f"without targetArtifact the function runs {code()}, not the sample's {sample}")
    finally:
        shutil.rmtree(own, ignore_errors=True)
        (ws.work / OWN_TARGET).unlink(missing_ok=True)
    return (
        f"the guide's crate built ({' '.join(build)}, {built_s:.0f} s) and deployed as targetFunction's code "
        f"({artifact}); preview clean; without the key the sample's zip is back"
    )


STEPS: list[tuple[str, Callable[[Workspace], str]]] = [
    ("init", init),
    ("preview", preview),
    ("up", up),
    ("stack reference", stack_reference),
    ("replacement", replacement),
    ("alarm email replacement", alarm_email_replacement),
    ("bucket rename", bucket_rename),
    ("secrets", secrets_stay_encrypted),
    ("refusals", refusals),
    ("a target of one's own", own_target),
    ("destroy refused with dead letters", destroy_refused_with_dead_letters),
    ("destroy refused with deletion protection", destroy_refused_with_deletion_protection),
    ("destroy", destroy),
    # relayctl pair (check_pair.py): after destroy, so the stand-in's world is empty.
    *check_pair.STEPS,
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pulumi-home", type=Path, required=True, help="PULUMI_HOME with the stand-in aws plugin installed"
    )
    parser.add_argument(
        "--work", type=Path, required=True, help="folder for the project copy, backend and world (wiped)"
    )
    args = parser.parse_args()
    ws = Workspace(
        work=args.work.resolve(),
        pulumi_home=args.pulumi_home.resolve(),
        passphrase=secrets.token_hex(16),
        external_id=f"check-{secrets.token_hex(20)}",
    )
    ws.prepare()
    version = ws.pulumi(None, "version", account=SOURCE_ACCOUNT).stdout.strip()
    print(f"check-pulumi: pulumi {version}, project {ws.project}")
    started = time.monotonic()
    for number, (title, step) in enumerate(STEPS, 1):
        t0 = time.monotonic()
        try:
            summary = step(ws)
        except (
            CheckFailed,
            check_pair.PairCheckFailed,
            subprocess.TimeoutExpired,
            KeyError,
            json.JSONDecodeError,
        ) as err:
            print(f"check-pulumi: [{number}/{len(STEPS)}] {title}: FAIL ({time.monotonic() - t0:.1f} s)\n{err}")
            check_pair.stop()
            return 1
        print(f"check-pulumi: [{number}/{len(STEPS)}] {title}: ok ({time.monotonic() - t0:.1f} s) {summary}")
    print(f"check-pulumi: {len(STEPS)} passed, 0 failed ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
