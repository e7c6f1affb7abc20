"""What one soak is asked to do: `SoakSettings`, built once from the command line (`cli`) and
read by the run and the report; frozen, so no part changes what another part reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from local_run.infra_command import ROOT

# Where each run keeps its work folder (binaries' copies, logs).
SOAK_DIR = ROOT / ".demo" / "soak"
# Key-ordered delivery's records per Invoke in the slow-target comparison, unless given.
COMPARED_RECORDS_PER_INVOCATION = 25
# The stack's relayTimeoutSeconds in a soak without a slow target, unless given. With the
# idempotency store and the effects table on, a fresh delivery of 100 records took 2.4 s at the
# median and 3.5 s at p99 on a busy 2-core machine (moto serialises every DynamoDB request): a 3 s
# timeout (2.55 s to deliver) deferred half of them again and again.
DEFAULT_RELAY_TIMEOUT_S = 8
# How long the drain waits after the last record is produced, unless given: at least
# MIN_DRAIN_S, and DRAIN_S_PER_RECORD per record of the total (measured: about 95 records a second
# delivered, so 100,000 records take about 1,050 s, most of it after production ends).
MIN_DRAIN_S = 600
DRAIN_S_PER_RECORD = 0.025


@dataclass(frozen=True)
class SoakSettings:
    """Every setting of one soak run, checked (`cli.parse_args` refuses what is out of range)."""

    total: int  # records to produce
    faults: str  # the fault matrix as given (default | none | class:rate,...)
    rates: Mapping[str, float]  # ... parsed: fault class -> rate
    seed: int  # seed of every fault decision
    records_per_tick: int  # records per producer invocation
    soak_share: float  # share of the records the soak writes itself
    keys: int  # partition keys shared by the records the soak writes
    parallelization_factor: int  # the stack's parallelizationFactor
    relay_containers: int
    relay_concurrency: int  # the stack's relayMaxConcurrentInvocations
    records_per_invocation: int  # the stack's relayMaxRecordsPerInvocation (0: one Invoke per batch)
    slow_target_ms: float  # the target's processing time per record (0: none)
    target_containers: int
    relay_timeout: int  # the stack's relayTimeoutSeconds
    max_retries: int  # the stack's maximumRetryAttempts
    idempotency_store: bool  # the target stack's idempotencyStore (off: every redelivery runs again)
    aggregated: float  # the share of the soak's own records written inside KPL aggregates
    large: float  # the share of the soak's own plain records written larger than 1 MiB
    drain_timeout: float  # seconds to wait for every record to be delivered or dead-lettered

    @property
    def slow_target(self) -> bool:
        """A slow target: the soak runs twice and compares one Invoke per batch with key-ordered delivery."""
        return self.slow_target_ms > 0

    def with_records_per_invocation(self, records_per_invocation: int) -> SoakSettings:
        """The same settings with another relayMaxRecordsPerInvocation (0: one Invoke per batch)."""
        return dataclasses.replace(self, records_per_invocation=records_per_invocation)

    def delivery_modes(self) -> dict[str, tuple[str, int]]:
        """The slow-target comparison's runs: label -> (work folder, relayMaxRecordsPerInvocation)."""
        per_invoke = self.records_per_invocation or COMPARED_RECORDS_PER_INVOCATION
        return {
            "one Invoke per batch (default)": ("one-invoke-per-batch", 0),
            f"key-ordered, relayMaxRecordsPerInvocation={per_invoke}": ("key-ordered", per_invoke),
        }
