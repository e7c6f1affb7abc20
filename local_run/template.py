"""A stack's rendered Pulumi template, and what the local run reads from it.

The functions must run locally with exactly the environment the Pulumi program sets on them, so
the local run keeps no list of variables of its own: it renders each stack with the program's
one renderer, `infra render --stack NAME --stack-file Pulumi.<stack>.yaml --set key=value...`
(what Pulumi's YAML runtime would get from the program's compiler for that stack file and
those `pulumi config set`s), and resolves the template's interpolations (`${stream.name}`,
`${deadLetterBucket.bucket}`, `fn::secret`, `fn::toJSON`) against the local resources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_run.infra_command import InfraError, run_infra

_INTERPOLATION = re.compile(r"\$\{([^}]+)\}")


class TemplateError(RuntimeError):
    pass


@dataclass(frozen=True)
class Template:
    """One stack's template as `infra render` printed it."""

    stack: str
    document: Mapping[str, Any]

    def resource(self, logical: str) -> Mapping[str, Any]:
        resources = self.document["resources"]
        try:
            return resources[logical]
        except KeyError:
            raise TemplateError(
                f"the rendered {self.stack} stack has no resource {logical!r} (has: {', '.join(sorted(resources))})"
            ) from None

    def properties(self, logical: str) -> Mapping[str, Any]:
        return self.resource(logical).get("properties") or {}

    def resources_of_type(self, type_token: str) -> list[tuple[str, Mapping[str, Any]]]:
        return [(logical, r) for logical, r in self.document["resources"].items() if r.get("type") == type_token]

    def literal(self, logical: str, prop: str, default: Any = None) -> Any:
        """A property that must be a literal for the local run (a name, a number): it is read
        before any local resource exists, so an interpolation is an error."""
        value = self.properties(logical).get(prop, default)
        if isinstance(value, Mapping) and set(value) == {"fn::secret"}:
            value = value["fn::secret"]
        if isinstance(value, str):
            return interpolate(value, {}, f"{self.stack} stack, {logical}.{prop}")
        return value

    def lambda_logging_environment(self, logical: str) -> dict[str, str]:
        """What Lambda adds to the function's environment from its `loggingConfig` (the
        template's `environment` holds neither): `AWS_LAMBDA_LOG_FORMAT`, and with the JSON
        format and an application log level, that level in `AWS_LAMBDA_LOG_LEVEL`."""
        config = self.properties(logical).get("loggingConfig") or {}
        where = f"{self.stack} stack, {logical}.loggingConfig"
        log_format = resolve(config.get("logFormat", "Text"), {}, f"{where}.logFormat")
        env = {"AWS_LAMBDA_LOG_FORMAT": log_format}
        if log_format == "JSON" and "applicationLogLevel" in config:
            env["AWS_LAMBDA_LOG_LEVEL"] = resolve(config["applicationLogLevel"], {}, f"{where}.applicationLogLevel")
        return env

    def function_environment(self, logical: str, refs: Mapping[str, str]) -> dict[str, str]:
        """The function's `environment.variables`, resolved to local values."""
        variables = (self.properties(logical).get("environment") or {}).get("variables") or {}
        return {name: resolve(v, refs, f"{logical}.environment.variables.{name}") for name, v in variables.items()}


def render(stack: str, stack_file: Path, settings: Mapping[str, str]) -> Template:
    """Renders `stack` from its stack file with `settings` set as stack config (an empty value
    removes a key; the secret external id comes in here, as stack files keep it encrypted)."""
    if not stack_file.is_file():
        raise TemplateError(f"{stack_file} is missing: the example stack config of the {stack} stack")
    args = ["render", "--stack", stack, "--stack-file", str(stack_file)]
    for key, value in settings.items():
        args += ["--set", f"{key}={value}"]
    try:
        printed = run_infra(*args, what=f"`infra render` of the {stack} stack ({stack_file.name})")
    except InfraError as err:
        raise TemplateError(str(err)) from err
    try:
        document = json.loads(printed)
    except ValueError as err:
        raise TemplateError(f"`infra render` printed something that is not a template: {err}") from err
    if not isinstance(document, dict) or not isinstance(document.get("resources"), dict):
        raise TemplateError(f"`infra render` printed no resources for the {stack} stack")
    return Template(stack, document)


def interpolate(text: str, refs: Mapping[str, str], where: str) -> str:
    """Replaces each `${logical.attribute}` in `text` by its local value: the one place an
    interpolation is resolved. One the local run does not know is an error that names it,
    never a silent empty string."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        if key not in refs:
            needs = "a literal" if not refs else f"one of {', '.join(sorted(refs))}"
            raise TemplateError(f"{where}: the local run cannot resolve ${{{key}}} (it needs {needs} here)")
        return str(refs[key])

    return _INTERPOLATION.sub(substitute, text)


def resolve(value: Any, refs: Mapping[str, str], where: str = "value") -> str:
    """A template value as the string a function's environment gets: interpolations resolved,
    `fn::secret` unwrapped, `fn::toJSON` serialised, scalars as Pulumi passes them."""
    if isinstance(value, str):
        return interpolate(value, refs, where)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "fn::secret":
            return resolve(arg, refs, where)
        if fn == "fn::toJSON":
            return json.dumps(_resolve_tree(arg, refs, where))
    raise TemplateError(f"{where}: unsupported template value {json.dumps(value)[:200]}")


def _resolve_tree(value: Any, refs: Mapping[str, str], where: str) -> Any:
    if isinstance(value, Mapping) and not any(k.startswith("fn::") for k in value):
        return {k: _resolve_tree(v, refs, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_tree(v, refs, where) for v in value]
    if isinstance(value, Mapping | str):
        return resolve(value, refs, where)
    return value
