"""Conformance of rendered templates with the pinned pulumi-aws SDK.

    python infra/checks/conformance.py --wheel <pulumi_aws-X-py3-none-any.whl> --version X \
        source.json target.json
    python infra/checks/conformance.py --wheel ... --version X --self-test source.json target.json

Everything is derived from the wheel, read as a zip (never installed): a resource type token
`aws:<module>:<Name>` must match exactly one `@pulumi.type_token("aws:<module>/<x>:<Name>")`
class; its `<Name>Args.__init__` gives the inputs (no default = required) and the
`@pulumi.getter(name=...)` decorators give their camelCase wire names; nested objects are
checked against the `*Args` input types of `_inputs.py` the annotation names, recursively.
Every `aws` resource must name the pinned version in `options.version`.

--self-test breaks copies of the templates in known ways and fails unless every break is found.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_RE = re.compile(
    r'@pulumi\.type_token\("([^"]+)"\)\s*\nclass (\w+)\(pulumi\.(?:CustomResource|ProviderResource)\)'
)
NESTED_RE = re.compile(r"'(\w+Args)'")
# Resources of Pulumi's built-in package are not in the aws SDK; their inputs are fixed.
BUILTIN_INPUTS = {"pulumi:pulumi:StackReference": ({"name"}, {"name"})}


@dataclass
class Input:
    python_name: str
    wire_name: str
    required: bool
    annotation: str

    @property
    def nested(self) -> str | None:
        if (
            self.annotation.startswith("pulumi.Input[Optional[Mapping[")
            or "Mapping[str" in self.annotation.split("'")[0]
        ):
            return None
        m = NESTED_RE.search(self.annotation)
        return m.group(1) if m else None

    @property
    def is_list(self) -> bool:
        return "Sequence[" in self.annotation


@dataclass
class ArgsType:
    name: str
    inputs: dict[str, Input] = field(default_factory=dict)  # by wire name


class Sdk:
    def __init__(self, wheel: str):
        self.zip = zipfile.ZipFile(wheel)
        self.names = self.zip.namelist()
        self.tokens: dict[str, tuple[str, str]] = {}
        self._modules: dict[str, ast.Module] = {}
        self._types: dict[tuple[str, str], ArgsType] = {}
        for name in self.names:
            if not name.startswith("pulumi_aws/") or not name.endswith(".py") or name.endswith("_inputs.py"):
                continue
            text = self.zip.read(name).decode()
            for token, cls in TOKEN_RE.findall(text):
                self.tokens[token] = (name, cls)

    def version(self) -> str:
        for name in self.names:
            m = re.match(r"pulumi_aws-([^/]+)\.dist-info/METADATA$", name)
            if m:
                return m.group(1)
        raise SystemExit("no dist-info in the wheel")

    def resolve_token(self, token: str) -> str | None:
        """Full token for `aws:mod:Name` (short) or `aws:mod/x:Name` (full)."""
        if token in self.tokens:
            return token
        parts = token.split(":")
        if len(parts) != 3:
            return None
        pkg, mod, name = parts
        matches = [
            t
            for t in self.tokens
            if t.split(":")[0] == pkg and t.split(":")[1].split("/")[0] == mod and t.split(":")[2] == name
        ]
        return matches[0] if len(matches) == 1 else None

    def module(self, path: str) -> ast.Module:
        if path not in self._modules:
            self._modules[path] = ast.parse(self.zip.read(path).decode())
        return self._modules[path]

    def args_type(self, path: str, cls: str) -> ArgsType | None:
        key = (path, cls)
        if key in self._types:
            return self._types[key]
        node = next((n for n in self.module(path).body if isinstance(n, ast.ClassDef) and n.name == cls), None)
        if node is None:
            return None
        init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
        wire = {}
        for fn in node.body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            for dec in fn.decorator_list:
                src = ast.unparse(dec)
                if src == "pulumi.getter":
                    wire[fn.name] = fn.name
                elif src.startswith("pulumi.getter("):
                    m = re.search(r"name='([^']+)'", src)
                    wire[fn.name] = m.group(1) if m else fn.name
        result = ArgsType(cls)
        for arg, default in zip(init.args.kwonlyargs, init.args.kw_defaults, strict=True):
            python_name = arg.arg
            annotation = ast.unparse(arg.annotation) if arg.annotation else ""
            wire_name = wire.get(python_name, python_name)
            result.inputs[wire_name] = Input(python_name, wire_name, default is None, annotation)
        self._types[key] = result
        return result

    def resource_args(self, full_token: str) -> ArgsType:
        path, cls = self.tokens[full_token]
        # The SDK names a resource's inputs `<Resource>InitArgs` when `<Resource>Args` is taken
        # by one of its nested types (BucketServerSideEncryptionConfiguration).
        t = self.args_type(path, f"{cls}Args") or self.args_type(path, f"{cls}InitArgs")
        assert t is not None, f"{cls}Args not found in {path}"
        return t

    def nested_type(self, near: str, cls: str) -> ArgsType | None:
        folder = near.rsplit("/", 1)[0]
        candidates = [f"{folder}/_inputs.py", "pulumi_aws/_inputs.py"]
        candidates += [n for n in self.names if n.endswith("/_inputs.py") and n not in candidates]
        for path in candidates:
            if path in self.names and f"class {cls}:".encode() in self.zip.read(path):
                return self.args_type(path, cls)
        return None


def is_expression(value: object) -> bool:
    return isinstance(value, dict) and any(k.startswith("fn::") for k in value)


class Checker:
    def __init__(self, sdk: Sdk, version: str):
        self.sdk = sdk
        self.version = version
        self.errors: list[str] = []
        self.resources = 0
        self.properties = 0
        self.nested = 0
        self.types: set[str] = set()

    def check_object(self, where: str, near: str, args: ArgsType, props: dict, depth: int) -> None:
        for wire_name in props:
            if wire_name not in args.inputs:
                self.errors.append(f"{where}: `{wire_name}` is not an input of {args.name}")
        for inp in args.inputs.values():
            if inp.required and inp.wire_name not in props:
                self.errors.append(f"{where}: required input `{inp.wire_name}` of {args.name} is missing")
        for wire_name, value in props.items():
            declared = args.inputs.get(wire_name)
            if declared is None:
                continue
            if depth:
                self.nested += 1
            else:
                self.properties += 1
            nested = declared.nested
            if not nested or is_expression(value) or isinstance(value, str):
                continue
            nested_args = self.sdk.nested_type(near, nested)
            if nested_args is None:
                self.errors.append(f"{where}.{wire_name}: input type {nested} not found in the SDK")
                continue
            values = value if isinstance(value, list) else [value]
            for i, item in enumerate(values):
                if isinstance(item, dict) and not is_expression(item):
                    suffix = f"[{i}]" if isinstance(value, list) else ""
                    self.check_object(f"{where}.{wire_name}{suffix}", near, nested_args, item, depth + 1)

    def check_template(self, label: str, template: dict) -> None:
        for logical, res in template.get("resources", {}).items():
            where = f"{label}:{logical}"
            token = res.get("type", "")
            props = res.get("properties", {}) or {}
            self.resources += 1
            if token in BUILTIN_INPUTS:
                allowed, required = BUILTIN_INPUTS[token]
                for k in props:
                    if k not in allowed:
                        self.errors.append(f"{where}: `{k}` is not an input of {token}")
                for k in required - set(props):
                    self.errors.append(f"{where}: required input `{k}` of {token} is missing")
                self.types.add(token)
                continue
            full = self.sdk.resolve_token(token)
            if full is None:
                self.errors.append(f"{where}: resource type {token} does not exist in pulumi-aws {self.version}")
                continue
            self.types.add(full)
            version = (res.get("options") or {}).get("version")
            if version != self.version:
                self.errors.append(f"{where}: options.version is {version!r}, the pin is {self.version}")
            path, _ = self.sdk.tokens[full]
            self.check_object(where, path, self.sdk.resource_args(full), props, 0)


def run(sdk: Sdk, version: str, templates: dict[str, dict]) -> Checker:
    checker = Checker(sdk, version)
    for label, t in templates.items():
        checker.check_template(label, t)
    return checker


def self_test(sdk: Sdk, version: str, templates: dict[str, dict]) -> list[str]:
    """Each break must produce at least one error mentioning `expect`."""
    source = next(t for t in templates.values() if "relayEventSourceMapping" in t["resources"])
    breaks = [
        (
            "misspelt top-level property",
            lambda t: t["resources"]["stream"]["properties"].update(retentionPeriodHours=24),
            "retentionPeriodHours",
        ),
        (
            "snake_case property",
            lambda t: t["resources"]["relayFunction"]["properties"].update(memory_size=128),
            "memory_size",
        ),
        ("required input removed", lambda t: t["resources"]["relayFunction"]["properties"].pop("role"), "`role`"),
        (
            "misspelt nested property",
            lambda t: t["resources"]["relayEventSourceMapping"]["properties"]["destinationConfig"]["onFailure"].update(
                destination="x"
            ),
            "destination",
        ),
        (
            "required nested input removed",
            lambda t: t["resources"]["schedule"]["properties"]["target"].pop("roleArn"),
            "roleArn",
        ),
        ("unknown type", lambda t: t["resources"]["stream"].update(type="aws:kinesis:Streams"), "aws:kinesis:Streams"),
        ("wrong version", lambda t: t["resources"]["stream"]["options"].update(version="6.0.0"), "6.0.0"),
        (
            "provider input misspelt",
            lambda t: t["resources"]["sourceProvider"]["properties"].update(allowedAccountId=["1"]),
            "allowedAccountId",
        ),
    ]
    failures = []
    for label, mutate, expect in breaks:
        broken = copy.deepcopy(source)
        mutate(broken)
        errors = run(sdk, version, {"broken": broken}).errors
        if not any(expect in e for e in errors):
            failures.append(f"self-test: break not detected: {label} (errors: {errors})")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wheel", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("templates", nargs="+")
    args = parser.parse_args()
    sdk = Sdk(args.wheel)
    if sdk.version() != args.version:
        print(f"conformance: wheel is pulumi-aws {sdk.version()}, the pin is {args.version}", file=sys.stderr)
        return 1
    templates = {
        path.rsplit("/", 1)[-1].removesuffix(".json"): json.loads(Path(path).read_text()) for path in args.templates
    }
    checker = run(sdk, args.version, templates)
    for e in checker.errors:
        print(f"conformance: {e}", file=sys.stderr)
    failures = self_test(sdk, args.version, templates) if args.self_test else []
    for f in failures:
        print(f"conformance: {f}", file=sys.stderr)
    status = "OK" if not checker.errors and not failures else "FAILED"
    print(
        f"conformance: pulumi-aws {args.version}: {checker.resources} resources of {len(checker.types)} types, "
        f"{checker.properties} properties and {checker.nested} nested properties checked, "
        f"{len(checker.errors)} errors"
        + (", self-test: 8 breaks all detected" if args.self_test and not failures else "")
        + f" — {status}"
    )
    return 0 if status == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
