"""The dead-letter bucket's key layout, as the Rust shared crate defines it.

`functions/shared/src/dead_letter.rs` is its one definition (the Pulumi program's IAM statements
are built from it); the local run reads it from `infra --dead-letter-layout`.
"""

from __future__ import annotations

import dataclasses
import functools

from local_run.infra_command import infra_facts


@dataclasses.dataclass(frozen=True)
class DeadLetterLayout:
    relay_prefix: str  # the relay's dead letters, one object per record
    mapping_prefix: str  # Lambda's on-failure records of the event source mapping
    async_prefix: str  # Lambda's on-failure records of asynchronous invocations (the producer)
    redriven_prefix: str  # where a redrive moves an object once its records are back


@functools.cache
def layout() -> DeadLetterLayout:
    """`infra --dead-letter-layout`, read once per process."""
    return infra_facts("--dead-letter-layout", DeadLetterLayout, str)
