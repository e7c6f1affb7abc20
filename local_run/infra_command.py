"""The Rust program `infra`, run as a command: the one place that knows where its binary is.

The Python side reads what the Rust code owns (the AWS limits, the envelope's shape, the
rendered stack templates) by running this binary, so nothing of it is typed again in Python.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
INFRA_BINARY = ROOT / "target" / "debug" / "infra"
BUILD_COMMAND = ("cargo", "build", "--quiet", "--locked", "-p", "infra")


class InfraError(RuntimeError):
    """The infra binary is missing and cannot be built, or it refused a command."""


@functools.cache
def infra_binary() -> Path:
    """`target/debug/infra`, built first if this checkout has none (`make demo` and `make e2e`
    build it before they start, so a stale binary is not used there)."""
    if INFRA_BINARY.exists():
        return INFRA_BINARY
    try:
        build = subprocess.run(BUILD_COMMAND, cwd=ROOT, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise InfraError(
            f"{INFRA_BINARY} is missing and cargo is not on PATH: install Rust, then run `{' '.join(BUILD_COMMAND)}`"
        ) from None
    if build.returncode != 0 or not INFRA_BINARY.exists():
        raise InfraError(
            f"{INFRA_BINARY} is missing and `{' '.join(BUILD_COMMAND)}` failed "
            f"(exit {build.returncode}):\n{build.stderr.strip()[-3000:]}"
        )
    return INFRA_BINARY


def run_infra(*args: str, what: str | None = None) -> str:
    """Runs `infra ARGS...` and returns what it printed. `what` names the call in an error
    instead of the arguments (which may hold a secret)."""
    command = [str(infra_binary()), *args]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        label = what or f"infra {' '.join(args)}"
        raise InfraError(f"{label} failed (exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}")
    return proc.stdout


def infra_facts(flag: str, cls: type[T], kind: type) -> T:
    """`infra FLAG` printed as one JSON object, read into the frozen dataclass `cls` whose
    fields are all of type `kind`: a field the binary did not print is an error, not a default."""
    printed = json.loads(run_infra(flag))
    wanted = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    missing = [name for name in wanted if not isinstance(printed.get(name), kind)]
    if missing:
        raise InfraError(f"`infra {flag}` printed no {kind.__name__} for {', '.join(missing)}: {printed}")
    return cls(**{name: printed[name] for name in wanted})
