"""Derive a Pulumi package schema for `aws` from the pinned pulumi-aws Python SDK wheel.

    python tools/pulumi/schema_from_wheel.py --wheel pulumi_aws-7.51.1-py3-none-any.whl --version 7.51.1 \
        --out schema.json

The real schema.json ships only in the Go module github.com/pulumi/pulumi-aws/provider/v7, which the
Go module proxy here refuses. The Python SDK of the same version was generated from that schema, so
the schema's shape can be read back from it. The wheel is read as a zip (never installed or
imported); every relevant module is parsed once with `ast`.

What the derivation reproduces, for every resource in the wheel:
- resource tokens (`@pulumi.type_token(...)` on `class X(pulumi.CustomResource)`);
- `inputProperties` / `requiredInputs` from `<X>Args.__init__` (a keyword-only argument without a
  default is required), `properties` / `required` from the resource's `pulumi.Output[...]` getters
  (not `Optional` = required), `stateInputs` from `_<X>State.__init__`; wire (camelCase) names come
  from `@pulumi.getter(name=...)`;
- object types: `<Name>Args` in `<module>/_inputs.py` and `<Name>` in `<module>/outputs.py` share
  the token `aws:<module>/<Name>:<Name>` (`<module>` is the SDK folder without the underscore
  Python adds to reserved words, `index` for the package root); their `required` comes from the
  input class when there is one, else from the output class;
- the provider (`ProviderArgs` and the getters of `Provider` in provider.py), `meta.moduleFormat`
  exactly as pulumi-aws declares it, and config variables from config/vars.py. The Python SDK types
  non-primitive config as `str`, so a config variable takes the type of the provider input of the
  same name when there is one (best effort).

What it does not reproduce: descriptions, defaults, secret flags, `replaceOnChanges`, deprecation
messages, aliases, language sections and enum value lists. Enums are flattened to their
underlying type (`Union[str, 'Runtime']` is a string), so enum values are not checked; other
unions become `oneOf`. Functions (invokes, including the provider's `terraformConfig` method) are
left out (`"functions": {}`), and so are the object types only functions use. Object type tokens
are rebuilt by the bridged-type convention above, which the SDK does not record: the few
hand-written overlay types (e.g. iam's `PolicyDocument`, really `aws:iam/documents:PolicyDocument`)
get a rebuilt token instead of their real one; references to them are consistent, so type
checking is the same. Any annotation the derivation cannot map is typed `pulumi.json#/Any`; their
number is printed on stderr. This proves the types, names and required flags the SDK was
generated from; it proves nothing about the provider's own validation.
"""

from __future__ import annotations

import argparse
import ast
import collections
import gc
import json
import os
import re
import sys
import time
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

PACKAGE = "aws"
ROOT = "pulumi_aws/"
MODULE_FORMAT = "(.*)(?:/[^/]*)"
PROVIDER_TOKEN = f"pulumi:providers:{PACKAGE}"
SPECIAL_FILES = {"_inputs.py", "outputs.py", "_enums.py", "vars.py"}
SKIPPED_FILES = {"__init__.py", "_utilities.py"}

PRIMITIVES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
PULUMI_REFS = {
    "pulumi.Archive": "pulumi.json#/Archive",
    "pulumi.Asset": "pulumi.json#/Asset",
    "pulumi.AssetOrArchive": "pulumi.json#/Asset",
    "pulumi.Json": "pulumi.json#/Json",
}
ANY = "pulumi.json#/Any"
WRAPPERS = {"pulumi.Input", "pulumi.Output", "Optional", "NotRequired", "typing.Optional"}
SEQUENCES = {"Sequence", "List", "list", "typing.Sequence"}
MAPPINGS = {"Mapping", "Dict", "dict", "typing.Mapping"}

# A type expression, as plain tuples so that worker processes can return it cheaply:
#   ("prim", "string") | ("ref", "pulumi.json#/Archive") | ("array", T) | ("map", T)
#   | ("named", module, python_class_name) | ("union", (T, ...)) | ("unknown", source)
TExpr = tuple


# ---------------------------------------------------------------------------------------------
# Facts extracted from one module (picklable, no AST)


@dataclass
class Prop:
    python_name: str
    wire_name: str
    required: bool
    texpr: TExpr


@dataclass
class ClassFacts:
    name: str
    props: list[Prop] = field(default_factory=list)


@dataclass
class ResourceFacts:
    token: str
    name: str
    inputs: list[Prop]
    outputs: list[Prop]
    state: list[Prop]


@dataclass
class FileFacts:
    path: str
    module: str
    resources: list[ResourceFacts] = field(default_factory=list)
    input_types: list[ClassFacts] = field(default_factory=list)
    output_types: list[ClassFacts] = field(default_factory=list)
    enums: dict[str, str] = field(default_factory=dict)  # class name -> primitive schema type
    config: list[Prop] = field(default_factory=list)


def module_of(path: str) -> str:
    """`pulumi_aws/lambda_/function.py` -> `lambda`; files at the package root -> `index`."""
    parts = path.split("/")
    return parts[1].rstrip("_") if len(parts) > 2 else "index"


def wanted(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return (
        path.startswith(ROOT)
        and path.endswith(".py")
        and base not in SKIPPED_FILES
        and not base.startswith("get_")
        and (base != "vars.py" or path == f"{ROOT}config/vars.py")
    )


# ---------------------------------------------------------------------------------------------
# Annotation -> type expression


def dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def named_ref(name: str, module: str) -> TExpr:
    """`'FooArgs'`, `'outputs.Foo'`, `'_iam.PolicyStatementArgs'`, `'iam.PolicyDocumentVersion'`."""
    prefix, _, cls = name.rpartition(".")
    if prefix in ("", "outputs", "_inputs"):
        return ("named", module, cls)
    if prefix.startswith("_root"):
        return ("named", "index", cls)
    return ("named", prefix.rpartition(".")[2].strip("_"), cls)


def texpr_of(node: ast.expr | None, module: str) -> TExpr:
    if node is None:
        return ("unknown", "<no annotation>")
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a forward reference: 'FooArgs'
        return texpr_of(ast.parse(node.value.strip(), mode="eval").body, module)
    name = dotted(node)
    if name is not None:
        short = name.removeprefix("_builtins.").removeprefix("builtins.")
        if short in PRIMITIVES:
            return ("prim", PRIMITIVES[short])
        if short in ("Any", "typing.Any", "object"):
            return ("ref", ANY)
        if name in PULUMI_REFS:
            return ("ref", PULUMI_REFS[name])
        if name.startswith("pulumi."):
            return ("unknown", name)
        return named_ref(name, module)
    if isinstance(node, ast.Subscript):
        head = dotted(node.value) or ""
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head in WRAPPERS and len(args) == 1:
            return texpr_of(args[0], module)
        if head in SEQUENCES and len(args) == 1:
            return ("array", texpr_of(args[0], module))
        if head in MAPPINGS and len(args) == 2:
            return ("map", texpr_of(args[1], module))
        if head in ("Union", "typing.Union"):
            members = tuple(texpr_of(a, module) for a in args)
            if set(members) == {("ref", PULUMI_REFS["pulumi.Asset"]), ("ref", PULUMI_REFS["pulumi.Archive"])}:
                return ("ref", PULUMI_REFS["pulumi.Asset"])  # the SDK's spelling of schema `Asset`
            return ("union", members)
    return ("unknown", ast.unparse(node))


def is_optional(node: ast.expr | None) -> bool:
    """True if the annotation, under `pulumi.Output[...]` / `pulumi.Input[...]`, is `Optional[...]`."""
    while isinstance(node, ast.Subscript):
        head = dotted(node.value)
        if head in ("Optional", "typing.Optional", "NotRequired"):
            return True
        if head not in ("pulumi.Input", "pulumi.Output"):
            return False
        node = node.slice
    return False


# ---------------------------------------------------------------------------------------------
# Class-level extraction


def decorator_names(fn: ast.FunctionDef | ast.ClassDef) -> list[str]:
    names = []
    for dec in fn.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        names.append(dotted(target) or "")
    return names


def getter_wire_name(fn: ast.FunctionDef) -> str | None:
    """The wire name of a `@pulumi.getter` / `@pulumi.getter(name=...)` method, None if it is not one."""
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Call) and dotted(dec.func) == "pulumi.getter":
            names = [
                k.value.value
                for k in dec.keywords
                if k.arg == "name" and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)
            ]
            positional = [a.value for a in dec.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            return (names or positional or [fn.name])[0]
        if dotted(dec) == "pulumi.getter":
            return fn.name
    return None


def methods(cls: ast.ClassDef) -> Iterator[ast.FunctionDef]:
    """The class's own `def`s, in order."""
    return (fn for fn in cls.body if isinstance(fn, ast.FunctionDef))


def getter_wire_names(cls: ast.ClassDef) -> dict[str, str]:
    """Python attribute name -> wire name."""
    wire: dict[str, str] = {}
    for fn in methods(cls):
        name = getter_wire_name(fn)
        if name is not None:
            wire.setdefault(fn.name, name)
    return wire


def find_init(cls: ast.ClassDef) -> ast.FunctionDef | None:
    inits = [fn for fn in methods(cls) if fn.name == "__init__"]
    return inits[0] if len(inits) == 1 else None


def init_props(cls: ast.ClassDef, module: str) -> list[Prop]:
    """Keyword-only `__init__` arguments; no default = required."""
    init = find_init(cls)
    if init is None:
        return []
    wire = getter_wire_names(cls)
    props = []
    for arg, default in zip(init.args.kwonlyargs, init.args.kw_defaults, strict=True):
        texpr = texpr_of(arg.annotation, module)
        props.append(Prop(arg.arg, wire.get(arg.arg, arg.arg), default is None, texpr))
    return props


def getter_props(cls: ast.ClassDef, module: str) -> list[Prop]:
    """`@property @pulumi.getter` methods; required = the annotation is not `Optional`."""
    props = []
    for fn in methods(cls):
        wire = getter_wire_name(fn)
        if wire is None or not any(d in ("property", "_builtins.property") for d in decorator_names(fn)):
            continue
        props.append(Prop(fn.name, wire, not is_optional(fn.returns), texpr_of(fn.returns, module)))
    return props


def type_token_of(cls: ast.ClassDef) -> str | None:
    for dec in cls.decorator_list:
        if isinstance(dec, ast.Call) and dotted(dec.func) == "pulumi.type_token" and dec.args:
            arg = dec.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                return arg.value
    return None


def config_props(cls: ast.ClassDef, module: str) -> list[Prop]:
    """Properties of config/vars.py's `_ExportableConfig`, keyed by the `__config__.get*('key')` key."""
    props = []
    for fn in methods(cls):
        for call in ast.walk(fn):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and dotted(call.func.value) == "__config__"
                and call.func.attr.startswith("get")
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str)
            ):
                props.append(Prop(fn.name, call.args[0].value, False, texpr_of(fn.returns, module)))
                break
    return props


def output_type_props(cls: ast.ClassDef, module: str) -> list[Prop]:
    """Output types: `__init__` gives required-ness and types, getters the wire names."""
    props = init_props(cls, module)
    return props if props else getter_props(cls, module)


def enum_type(bases: list[str]) -> str:
    """`class X(_builtins.str, Enum)` -> `string`."""
    for b in bases:
        if b.rpartition(".")[2] in PRIMITIVES:
            return PRIMITIVES[b.rpartition(".")[2]]
    return "string"


# ---------------------------------------------------------------------------------------------
# Module-level extraction (runs in worker processes)

_ZIP: zipfile.ZipFile | None = None
_ZIP_PATH: str | None = None


def read_member(wheel: str, path: str) -> bytes:
    global _ZIP, _ZIP_PATH
    if _ZIP is None or wheel != _ZIP_PATH:
        _ZIP, _ZIP_PATH = zipfile.ZipFile(wheel), wheel
    return _ZIP.read(path)


def extract(job: tuple[str, str]) -> FileFacts | None:
    gc.disable()  # see main()
    wheel, path = job
    source = read_member(wheel, path)
    base = path.rsplit("/", 1)[-1]
    if base not in SPECIAL_FILES and b"@pulumi.type_token(" not in source:
        return None  # a function module (invoke) or a helper
    module = module_of(path)
    tree = ast.parse(source, filename=path)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    facts = FileFacts(path, module)
    for cls in classes.values():
        decs = decorator_names(cls)
        bases = [dotted(b) or "" for b in cls.bases]
        token = type_token_of(cls)
        if base == "vars.py" and cls.name == "_ExportableConfig":
            facts.config = config_props(cls, module)
        elif token and any(b in ("pulumi.CustomResource", "pulumi.ProviderResource") for b in bases):
            # `<Resource>InitArgs` when `<Resource>Args` is taken by one of the resource's own
            # nested types (BucketServerSideEncryptionConfiguration).
            args = classes.get(f"{cls.name}Args") or classes.get(f"{cls.name}InitArgs")
            state = classes.get(f"_{cls.name}State")
            facts.resources.append(
                ResourceFacts(
                    token=token,
                    name=cls.name,
                    inputs=init_props(args, module) if args else [],
                    outputs=getter_props(cls, module),
                    state=init_props(state, module) if state else [],
                )
            )
        elif token and "Enum" in bases:
            facts.enums[cls.name] = enum_type(bases)
        elif base == "_inputs.py" and "pulumi.input_type" in decs:
            facts.input_types.append(ClassFacts(cls.name, init_props(cls, module)))
        elif base == "outputs.py" and "pulumi.output_type" in decs:
            facts.output_types.append(ClassFacts(cls.name, output_type_props(cls, module)))
    return facts


def extract_all(wheel: str, paths: list[str], jobs: int) -> list[FileFacts]:
    work = [(wheel, p) for p in paths]
    if jobs <= 1:
        results: Iterable[FileFacts | None] = map(extract, work)
        return [r for r in results if r is not None]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return [r for r in pool.map(extract, work, chunksize=16) if r is not None]


# ---------------------------------------------------------------------------------------------
# Schema assembly


@dataclass
class TypeEntry:
    token: str
    input: ClassFacts | None = None
    output: ClassFacts | None = None


class Builder:
    def __init__(self, files: list[FileFacts]):
        self.enums: dict[tuple[str, str], str] = {}
        self.inputs: dict[tuple[str, str], ClassFacts] = {}
        self.outputs: dict[tuple[str, str], ClassFacts] = {}
        self.files = files
        for f in files:
            for name, prim in f.enums.items():
                self.enums[(f.module, name)] = prim
            for c in f.input_types:
                self.inputs[(f.module, c.name)] = c
            for c in f.output_types:
                self.outputs[(f.module, c.name)] = c
        self.types: dict[str, TypeEntry] = {}
        self.pending: list[str] = []
        self.fallbacks: collections.Counter[str] = collections.Counter()

    # -- type references ------------------------------------------------------------------------

    def type_entry(self, module: str, name: str) -> TypeEntry | None:
        """The object type a class name denotes: `FooArgs` (input) and `Foo` (output) share a token."""
        if (module, name) in self.outputs:
            base = name
        elif name.endswith("ArgsDict") and (module, name[: -len("Dict")]) in self.inputs:
            base = name[: -len("ArgsDict")]
        elif name.endswith("Args") and (module, name) in self.inputs:
            base = name[: -len("Args")]
        else:
            return None
        token = f"{PACKAGE}:{module}/{base}:{base}"
        entry = self.types.get(token)
        if entry is None:
            entry = TypeEntry(token, self.inputs.get((module, f"{base}Args")), self.outputs.get((module, base)))
            self.types[token] = entry
            self.pending.append(token)
        return entry

    def spec(self, t: TExpr) -> dict[str, Any]:
        kind = t[0]
        if kind == "prim":
            return {"type": t[1]}
        if kind == "ref":
            return {"$ref": t[1]}
        if kind == "array":
            return {"type": "array", "items": self.spec(t[1])}
        if kind == "map":
            return {"type": "object", "additionalProperties": self.spec(t[1])}
        if kind == "named":
            _, module, name = t
            if (module, name) in self.enums:
                return {"type": self.enums[(module, name)]}
            entry = self.type_entry(module, name)
            if entry is not None:
                return {"$ref": f"#/types/{entry.token}"}
            return self.fallback(f"{module}.{name}")
        if kind == "union":
            members: dict[str, dict[str, Any]] = {}
            for m in t[1]:
                s = self.spec(m)
                members.setdefault(json.dumps(s, sort_keys=True), s)
            specs = list(members.values())
            return specs[0] if len(specs) == 1 else {"oneOf": specs}
        return self.fallback(t[1])

    def fallback(self, what: str) -> dict[str, Any]:
        self.fallbacks[what] += 1
        return {"$ref": ANY}

    def properties(self, props: list[Prop]) -> dict[str, Any]:
        return {p.wire_name: self.spec(p.texpr) for p in props}

    @staticmethod
    def required(props: list[Prop]) -> list[str]:
        return sorted(p.wire_name for p in props if p.required)

    # -- sections -------------------------------------------------------------------------------

    def resource_spec(self, r: ResourceFacts) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "inputProperties": self.properties(r.inputs),
            "properties": self.properties(r.outputs),
            "stateInputs": {"type": "object", "properties": self.properties(r.state)},
        }
        if self.required(r.inputs):
            spec["requiredInputs"] = self.required(r.inputs)
        if self.required(r.outputs):
            spec["required"] = self.required(r.outputs)
        return spec

    def object_type_spec(self, entry: TypeEntry) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for facts in (entry.output, entry.input):  # the input class wins where both declare a property
            if facts is not None:
                props.update(self.properties(facts.props))
        source = entry.input or entry.output
        spec: dict[str, Any] = {"type": "object", "properties": props}
        if source is not None and self.required(source.props):
            spec["required"] = self.required(source.props)
        return spec

    def build(self, version: str) -> dict[str, Any]:
        resources: dict[str, Any] = {}
        provider: dict[str, Any] = {}
        config_props: list[Prop] = []
        provider_inputs: dict[str, Prop] = {}
        for f in self.files:
            config_props += f.config
            for r in f.resources:
                if r.token == PROVIDER_TOKEN:
                    provider = self.resource_spec(r)
                    provider.pop("stateInputs")
                    provider_inputs = {p.wire_name: p for p in r.inputs}
                else:
                    resources[r.token] = self.resource_spec(r)
        variables = {
            p.wire_name: self.spec(provider_inputs[p.wire_name].texpr if p.wire_name in provider_inputs else p.texpr)
            for p in config_props
        }
        types: dict[str, Any] = {}
        while self.pending:
            token = self.pending.pop()
            types[token] = self.object_type_spec(self.types[token])
        return {
            "name": PACKAGE,
            "version": version,
            "meta": {"moduleFormat": MODULE_FORMAT},
            "config": {"variables": variables},
            "provider": provider,
            "resources": resources,
            "types": types,
            "functions": {},
        }


# ---------------------------------------------------------------------------------------------
# Checks


def iter_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from iter_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from iter_refs(v)


def sanity_errors(schema: dict[str, Any]) -> list[str]:
    errors = []
    resources = schema.get("resources", {})
    if len(resources) <= 1000:
        errors.append(f"only {len(resources)} resources (expected > 1000)")
    expected = {
        "aws:lambda/function:Function": "role",
        "aws:iam/role:Role": "assumeRolePolicy",
        "aws:lambda/eventSourceMapping:EventSourceMapping": "functionName",
    }
    for token, required in expected.items():
        if token not in resources:
            errors.append(f"resource {token} is missing")
        elif required not in resources[token].get("requiredInputs", []):
            errors.append(f"{token} does not require `{required}`")
    function = resources.get("aws:lambda/function:Function", {})
    if function.get("inputProperties", {}).get("code") != {"$ref": "pulumi.json#/Archive"}:
        errors.append("aws:lambda/function:Function input `code` is not an Archive")
    if function.get("properties", {}).get("arn") != {"type": "string"}:
        errors.append("aws:lambda/function:Function output `arn` is not a string")
    types = schema.get("types", {})
    dangling = sorted({r for r in iter_refs(schema) if r.startswith("#/types/") and r[len("#/types/") :] not in types})
    if dangling:
        errors.append(f"{len(dangling)} dangling type references, e.g. {dangling[:3]}")
    return errors


def wheel_version(zf: zipfile.ZipFile) -> str | None:
    for name in zf.namelist():
        if re.fullmatch(r"pulumi_aws-[^/]+\.dist-info/METADATA", name):
            for line in zf.read(name).decode().splitlines():
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    return None


class WheelError(Exception):
    pass


def open_wheel(path: str, version: str) -> zipfile.ZipFile:
    """The wheel as a zip, after checking that it is one and that it is the pinned version."""
    if not os.path.isfile(path):
        raise WheelError(f"{path} does not exist")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            head = fh.read(100)
        hint = " (it is a Git LFS pointer, not the wheel)" if head.startswith(b"version https://git-lfs") else ""
        raise WheelError(f"{path} is not a zip file{hint}")
    zf = zipfile.ZipFile(path)
    found = wheel_version(zf)
    if found is None:
        raise WheelError(f"{path} has no pulumi_aws-*.dist-info/METADATA with a Version")
    if found != version:
        raise WheelError(f"{path} is pulumi-aws {found}, --version is {version}")
    return zf


def default_jobs() -> int:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(usable, 8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", required=True, help="the pulumi_aws-<version>-py3-none-any.whl file")
    parser.add_argument("--version", required=True, help="the pinned pulumi-aws version")
    parser.add_argument("--out", required=True, help="where to write schema.json")
    parser.add_argument(
        "--jobs", type=int, default=default_jobs(), help="worker processes (default: usable CPUs, at most 8)"
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    # Parsing allocates millions of AST nodes, which make the cyclic GC run again and again for
    # nothing (ASTs hold no reference cycles and are freed by reference counting): about a third
    # of the runtime. Worker processes inherit the setting (fork) or set it in `extract`.
    gc.disable()
    try:
        zf = open_wheel(args.wheel, args.version)
    except WheelError as e:
        print(f"schema_from_wheel: {e}", file=sys.stderr)
        return 1
    paths = sorted(n for n in zf.namelist() if wanted(n))
    files = sorted(extract_all(args.wheel, paths, args.jobs), key=lambda f: f.path)
    builder = Builder(files)
    schema = builder.build(args.version)

    # Written next to --out, checked as read back from disk, then moved into place: a failed run
    # leaves no schema behind.
    partial = f"{args.out}.partial"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(partial, "w", encoding="utf-8") as fh:
        json.dump(schema, fh, sort_keys=True, separators=(",", ":"))
        fh.write("\n")
    with open(partial, encoding="utf-8") as fh:
        errors = sanity_errors(json.load(fh))
    if errors:
        os.remove(partial)
        for error in errors:
            print(f"schema_from_wheel: sanity check failed: {error}", file=sys.stderr)
        return 1
    os.replace(partial, args.out)

    fallbacks = sum(builder.fallbacks.values())
    print(
        f"schema_from_wheel: pulumi-aws {args.version}: {len(schema['resources'])} resources, "
        f"{len(schema['types'])} types, {len(schema['config']['variables'])} config variables; "
        f"{fallbacks} annotations typed Any; {time.monotonic() - started:.1f}s -> {args.out}",
        file=sys.stderr,
    )
    for what, n in builder.fallbacks.most_common(10):
        print(f"schema_from_wheel:   typed Any: {what} ({n}x)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
