"""Checks of the aws schema that schema_from_wheel.py derives from the pinned pulumi-aws wheel.

The wheel is the one `make` downloads into .cache/pulumi-aws/ (or PULUMI_AWS_WHEEL); without it
every test here is skipped. The schema is derived once per session by running the script.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from schema_from_wheel import iter_refs  # the script's own walker: what it yields is not under test here

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().with_name("schema_from_wheel.py")


def pinned_version() -> str:
    """The program's one definition of the pin (the Makefile reads the same line)."""
    model = (REPO / "infra/src/template.rs").read_text()
    m = re.search(r'pub const PULUMI_AWS_VERSION: &str = "([^"]+)";', model)
    assert m, "PULUMI_AWS_VERSION not found in infra/src/template.rs"
    return m.group(1)


VERSION = pinned_version()
WHEEL = Path(os.environ.get("PULUMI_AWS_WHEEL", REPO / f".cache/pulumi-aws/pulumi_aws-{VERSION}-py3-none-any.whl"))

pytestmark = pytest.mark.skipif(
    not WHEEL.is_file(),
    reason=f"pulumi-aws {VERSION} wheel not at {WHEEL}; get it with "
    f"`python3 -m pip download --no-deps -d .cache/pulumi-aws pulumi-aws=={VERSION}` (or set PULUMI_AWS_WHEEL)",
)


def derive(out: Path, wheel: Path = WHEEL, version: str = VERSION) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), "--wheel", str(wheel), "--version", version, "--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("schema") / "schema.json"
    result = derive(out)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = spec["$ref"]
    assert ref.startswith("#/types/"), ref
    return schema["types"][ref.removeprefix("#/types/")]


def test_package_header(schema: dict[str, Any]) -> None:
    assert schema["name"] == "aws"
    assert schema["version"] == VERSION
    # The real pulumi-aws value: it lets `aws:kinesis:Stream` resolve to `aws:kinesis/stream:Stream`.
    assert schema["meta"] == {"moduleFormat": "(.*)(?:/[^/]*)"}
    assert schema["functions"] == {}
    assert len(schema["resources"]) > 1000


@pytest.mark.parametrize(
    ("token", "required"),
    [
        ("aws:lambda/function:Function", "role"),
        ("aws:iam/role:Role", "assumeRolePolicy"),
        ("aws:lambda/eventSourceMapping:EventSourceMapping", "functionName"),
        ("aws:sqs/queuePolicy:QueuePolicy", "queueUrl"),
        # Its inputs class is `...InitArgs` (the SDK's `...Args` is one of its nested types).
        ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "rules"),
    ],
)
def test_required_inputs(schema: dict[str, Any], token: str, required: str) -> None:
    resource = schema["resources"][token]
    assert required in resource["requiredInputs"]
    assert required in resource["inputProperties"]


def test_optional_inputs_are_not_required(schema: dict[str, Any]) -> None:
    function = schema["resources"]["aws:lambda/function:Function"]
    assert function["requiredInputs"] == ["role"]
    assert "memorySize" in function["inputProperties"]  # camelCase wire name, not memory_size
    assert "memory_size" not in function["inputProperties"]


def test_function_code_and_outputs(schema: dict[str, Any]) -> None:
    function = schema["resources"]["aws:lambda/function:Function"]
    assert function["inputProperties"]["code"] == {"$ref": "pulumi.json#/Archive"}
    assert function["inputProperties"]["memorySize"] == {"type": "integer"}
    assert function["inputProperties"]["runtime"] == {"type": "string"}  # Union[str, Runtime enum], flattened
    assert function["properties"]["arn"] == {"type": "string"}
    assert "arn" in function["required"]
    assert "code" not in function.get("required", [])  # Output[Optional[Archive]]


def test_function_environment_variables(schema: dict[str, Any]) -> None:
    environment = schema["resources"]["aws:lambda/function:Function"]["inputProperties"]["environment"]
    assert environment == {"$ref": "#/types/aws:lambda/FunctionEnvironment:FunctionEnvironment"}
    variables = resolve(schema, environment)["properties"]["variables"]
    assert variables == {"type": "object", "additionalProperties": {"type": "string"}}


def test_kinesis_stream_mode_details(schema: dict[str, Any]) -> None:
    stream = schema["resources"]["aws:kinesis/stream:Stream"]
    details = stream["inputProperties"]["streamModeDetails"]
    assert details["$ref"].startswith("#/types/aws:kinesis/")
    target = resolve(schema, details)
    assert target["type"] == "object"
    assert target["required"] == ["streamMode"]
    assert target["properties"]["streamMode"] == {"type": "string"}
    # outputs refer to the same type token as inputs
    assert stream["properties"]["streamModeDetails"] == details


def test_nested_list_type(schema: dict[str, Any]) -> None:
    schedule = schema["resources"]["aws:scheduler/schedule:Schedule"]
    target = resolve(schema, schedule["inputProperties"]["target"])
    assert {"arn", "roleArn"} <= set(target["required"])
    mapping = schema["resources"]["aws:lambda/eventSourceMapping:EventSourceMapping"]
    config = resolve(schema, mapping["inputProperties"]["destinationConfig"])
    on_failure = resolve(schema, config["properties"]["onFailure"])
    assert on_failure["properties"]["destinationArn"] == {"type": "string"}


def test_provider(schema: dict[str, Any]) -> None:
    inputs = schema["provider"]["inputProperties"]
    assert inputs["region"] == {"type": "string"}
    assert inputs["allowedAccountIds"] == {"type": "array", "items": {"type": "string"}}
    tags = resolve(schema, inputs["defaultTags"])
    assert tags["properties"]["tags"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert schema["config"]["variables"]["region"] == {"type": "string"}


def test_no_dangling_type_refs(schema: dict[str, Any]) -> None:
    all_refs = set(iter_refs(schema))
    dangling = sorted(
        r for r in all_refs if r.startswith("#/types/") and r.removeprefix("#/types/") not in schema["types"]
    )
    assert dangling == []
    others = {r for r in all_refs if not r.startswith("#/types/")}
    assert others <= {"pulumi.json#/Any", "pulumi.json#/Archive", "pulumi.json#/Asset", "pulumi.json#/Json"}


def test_required_names_are_declared(schema: dict[str, Any]) -> None:
    for token, resource in schema["resources"].items():
        assert set(resource.get("requiredInputs", [])) <= set(resource["inputProperties"]), token
        assert set(resource.get("required", [])) <= set(resource["properties"]), token
    for token, spec in schema["types"].items():
        assert set(spec.get("required", [])) <= set(spec["properties"]), token


def test_refuses_version_mismatch(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    result = derive(out, version="0.0.1")
    assert result.returncode == 1
    assert f"is pulumi-aws {VERSION}, --version is 0.0.1" in result.stderr
    assert not out.exists()


def test_refuses_lfs_pointer(tmp_path: Path) -> None:
    pointer = tmp_path / WHEEL.name
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n")
    result = derive(tmp_path / "schema.json", wheel=pointer)
    assert result.returncode == 1
    assert "not a zip file" in result.stderr and "Git LFS pointer" in result.stderr
