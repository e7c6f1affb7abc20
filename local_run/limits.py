"""The AWS limits the data path respects, as the Rust shared crate defines them.

`functions/shared/src/limits.rs` is their one definition, next to AWS's documentation; the
local run and its tests read them from `infra --limits` instead of typing 6 MB again.
"""

from __future__ import annotations

import dataclasses
import functools

from local_run.infra_command import infra_facts


@dataclasses.dataclass(frozen=True)
class Limits:
    # A synchronous Invoke request must be smaller than this (bytes); it also caps the batch
    # an event source mapping hands a function.
    lambda_sync_payload_limit: int
    kinesis_max_record_bytes: int
    kinesis_max_records_per_put: int
    kinesis_max_bytes_per_put: int
    # The largest record a stream may be set to take whose event still reaches a Lambda function.
    lambda_consumer_max_record_bytes: int


@functools.cache
def limits() -> Limits:
    """`infra --limits`, read once per process."""
    return infra_facts("--limits", Limits, int)
