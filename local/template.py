"""Renders the Pulumi program the way Pulumi's YAML runtime does, and reads what the local run needs.

The functions must run locally with exactly the environment the Pulumi program sets on them, so
the harness does not keep its own list of variables: it runs the program's compiler command (from
`Pulumi.yaml`, `runtime.options.compiler`) with `PULUMI_STACK`, `PULUMI_PROJECT` and
`PULUMI_CONFIG`, as `pulumi preview` would, and resolves the template's interpolations
(`${stream.name}`, `${deadLetterQueue.url}`, `fn::secret`, ...) against the local resources.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

PROJECT = "cross-account-relay"
_INTERPOLATION = re.compile(r"\$\{([^}]+)\}")


class TemplateError(RuntimeError):
    pass


def stack_config(root: Path, stack: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The stack's config as PULUMI_CONFIG carries it: project defaults, then the stack file."""
    config: dict[str, str] = {}
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(spec, dict):
            value = spec.get("value", spec.get("default"))
        else:
            value = spec
        if value is not None:
            config[full] = value if isinstance(value, str) else json.dumps(value)
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise TemplateError(f"{stack_file} is missing (the example stack config of issue 4)")
    for key, value in ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, dict) and "secure" in value:
            continue  # encrypted: the local run supplies its own value through overrides
        config[full] = value if isinstance(value, str) else json.dumps(value)
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        config[full] = str(value)
    return config


def compiler_command(root: Path) -> str:
    project_file = root / "Pulumi.yaml"
    if not project_file.exists():
        raise TemplateError("Pulumi.yaml is missing: the Pulumi program (issue 4) is not in this checkout yet")
    project = yaml.safe_load(project_file.read_text())
    runtime = project.get("runtime") or {}
    command = (runtime.get("options") or {}).get("compiler") if isinstance(runtime, dict) else None
    if not command:
        raise TemplateError("Pulumi.yaml has no runtime.options.compiler")
    return command


def render(root: Path, stack: str, overrides: dict[str, str] | None = None) -> dict:
    """Runs the program's compiler for `stack` and returns the parsed template."""
    command = compiler_command(root)
    config = stack_config(root, stack, overrides)
    env = dict(os.environ)
    env.update({
        "PULUMI_STACK": stack,
        "PULUMI_PROJECT": PROJECT,
        "PULUMI_ORGANIZATION": "organization",
        "PULUMI_ROOT_DIRECTORY": str(root),
        "PULUMI_CONFIG": json.dumps(config),
    })
    proc = subprocess.run(command, shell=True, cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TemplateError(
            f"rendering stack {stack!r} with `{command}` failed (exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}"
        )
    try:
        template = yaml.safe_load(proc.stdout)  # JSON is YAML too
    except yaml.YAMLError as err:
        raise TemplateError(f"`{command}` printed something that is not a template: {err}") from err
    if not isinstance(template, dict) or "resources" not in template:
        raise TemplateError(f"`{command}` printed no resources for stack {stack!r}")
    return template


def resource(template: dict, logical: str) -> dict:
    try:
        return template["resources"][logical]
    except KeyError:
        raise TemplateError(
            f"the rendered template has no resource {logical!r} (has: {', '.join(sorted(template['resources']))})"
        ) from None


def properties(template: dict, logical: str) -> dict:
    return resource(template, logical).get("properties") or {}


def resolve(value, refs: dict[str, str], where: str = "value"):
    """Resolves interpolations and the built-in functions a function's environment may use.

    `refs` maps `logical.attribute` (and plain names) to local values. An interpolation the
    local run does not know is an error that names it, never a silent empty string.
    """
    if isinstance(value, str):
        def substitute(match: re.Match) -> str:
            key = match.group(1).strip()
            if key not in refs:
                raise TemplateError(f"{where}: the local run cannot resolve ${{{key}}}")
            return str(refs[key])

        return _INTERPOLATION.sub(substitute, value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        if len(value) == 1:
            (fn, arg), = value.items()
            if fn == "fn::secret":
                return resolve(arg, refs, where)
            if fn == "fn::toJSON":
                return json.dumps(resolve_tree(arg, refs, where))
        raise TemplateError(f"{where}: unsupported template expression {json.dumps(value)[:200]}")
    raise TemplateError(f"{where}: unsupported value {value!r}")


def resolve_tree(value, refs, where):
    if isinstance(value, dict) and not any(k.startswith("fn::") for k in value):
        return {k: resolve_tree(v, refs, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_tree(v, refs, where) for v in value]
    if isinstance(value, (dict, str)):
        return resolve(value, refs, where)
    return value


def function_environment(template: dict, logical: str, refs: dict[str, str]) -> dict[str, str]:
    """The function's `environment.variables`, resolved to local values."""
    props = properties(template, logical)
    variables = ((props.get("environment") or {}).get("variables")) or {}
    return {name: resolve(v, refs, f"{logical}.environment.variables.{name}") for name, v in variables.items()}


def literal(template: dict, logical: str, prop: str, default=None):
    """A property that must be a literal for the local run (a name, a number)."""
    value = properties(template, logical).get(prop, default)
    if isinstance(value, str) and "${" in value:
        raise TemplateError(f"{logical}.{prop} is an interpolation ({value}); the local run needs a literal")
    if isinstance(value, dict) and "fn::secret" in value:
        return value["fn::secret"]
    return value
