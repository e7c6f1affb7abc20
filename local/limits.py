"""The AWS limits the data path respects, as the Rust shared crate defines them.

`functions/shared/src/limits.rs` is their one definition, next to AWS's documentation; the
local run and its tests read them from `infra --limits` instead of typing 6 MB again.
"""

from __future__ import annotations

import dataclasses
import functools
import json

from local.program import InfraError, run_infra


@dataclasses.dataclass(frozen=True)
class Limits:
    # A synchronous Invoke request must be smaller than this (bytes); it also caps the batch
    # an event source mapping hands a function.
    lambda_sync_payload_limit: int
    kinesis_max_record_bytes: int
    kinesis_max_records_per_put: int
    kinesis_max_bytes_per_put: int


@functools.cache
def limits() -> Limits:
    """`infra --limits`, read once per process."""
    printed = json.loads(run_infra("--limits"))
    wanted = [f.name for f in dataclasses.fields(Limits)]
    missing = [name for name in wanted if not isinstance(printed.get(name), int)]
    if missing:
        raise InfraError(f"`infra --limits` printed no integer for {', '.join(missing)}: {printed}")
    return Limits(**{name: printed[name] for name in wanted})
