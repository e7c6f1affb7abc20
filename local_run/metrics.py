"""The functions' CloudWatch metrics as the local run sees them: the Embedded Metric Format (EMF)
lines each function prints once per invocation, read from its log and summed, beside the
ledger's own counts.

The names come from `infra --metric-names`; `functions/shared/src/metrics.rs` is their one
definition. What this proves: each function prints well-formed EMF lines (namespace, dimension,
every declared metric present) whose totals match what the ledger counted independently. What
it does not: CloudWatch's extraction of them (no CloudWatch here).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from local_run.envelope import RELAY_KINDS
from local_run.infra_command import infra_facts
from local_run.ledger import Accounting, Ledger


@dataclasses.dataclass(frozen=True)
class MetricNames:
    namespace: str
    dimension: str
    relay_records_received: str
    relay_records_delivered: str
    relay_records_dead_lettered: str
    relay_records_deadline_deferred: str
    relay_poison_split_invocations: str
    target_records_ok: str
    target_duplicates: str
    producer_records_written: str


@functools.cache
def names() -> MetricNames:
    """`infra --metric-names`, read once per process."""
    return infra_facts("--metric-names", MetricNames, str)


class EmfError(ValueError):
    """A line with an `_aws` member that CloudWatch would not read as the metrics it declares."""


def totals(lines: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Each metric's sum over the EMF lines among `lines` (other log lines are skipped); a list
    of samples adds its values. A malformed EMF line is an `EmfError` naming what is wrong."""
    sums: dict[str, float] = {}
    for line in lines:
        if "_aws" not in line:
            continue
        for name, values in _metrics_of(line).items():
            sums[name] = sums.get(name, 0.0) + sum(values)
    return sums


def _metrics_of(line: Mapping[str, Any]) -> dict[str, list[float]]:
    """The metrics one EMF line declares, with their values, after checking the declaration."""
    n = names()
    try:
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        declared = [m["Name"] for m in directive["Metrics"]]
        namespace, dimensions = directive["Namespace"], directive["Dimensions"]
        timestamp = line["_aws"]["Timestamp"]
    except (KeyError, TypeError, ValueError) as err:
        raise EmfError(f"EMF line without one complete metric directive ({err!r}): {line}") from err
    if namespace != n.namespace or dimensions != [[n.dimension]]:
        raise EmfError(f"EMF line not in namespace {n.namespace} with dimension {n.dimension}: {line}")
    if not isinstance(timestamp, int) or not isinstance(line.get(n.dimension), str):
        raise EmfError(f"EMF line without an integer Timestamp or a {n.dimension} value: {line}")
    found: dict[str, list[float]] = {}
    for name in declared:
        value = line.get(name)
        values: list[Any] = value if isinstance(value, list) else [value]
        numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if not values or len(numbers) != len(values):
            raise EmfError(f"EMF line declares {name} but holds {value!r} for it: {line}")
        found[name] = numbers
    return found


@dataclasses.dataclass(frozen=True)
class Agreement:
    """A metric total and the number it must equal, counted another way."""

    what: str
    metric: float
    expected: int

    @property
    def agrees(self) -> bool:
        return self.metric == self.expected

    def row(self) -> tuple[str, str]:
        verdict = "agrees" if self.agrees else "DIFFERS"
        return (self.what, f"{self.metric:g} / {self.expected} {verdict}")


def agreements(logs: Mapping[str, Sequence[Mapping[str, Any]]], ledger: Ledger, acc: Accounting) -> list[Agreement]:
    """The metric totals of a run's function logs (`logs`: function -> its log lines) beside the
    ledger. They agree exactly on a run without faults; a fault (a relay that dies after
    writing a dead letter, a target container that is replaced and so forgets what it
    processed) makes a metric count a record twice where the ledger counts ids once."""
    n = names()
    producer, relay, target = (totals(logs[f]) for f in ("producer", "relay", "target"))
    relay_letters = sum(1 for m in ledger.dead_letters() if m.get("kind") in RELAY_KINDS)
    first_time_ok = target.get(n.target_records_ok, 0) - target.get(n.target_duplicates, 0)
    return [
        Agreement(
            f"producer {n.producer_records_written} / records written (ids the producer returned)",
            producer.get(n.producer_records_written, 0),
            len(ledger.produced()),
        ),
        Agreement(
            f"target {n.target_records_ok} - {n.target_duplicates} / delivered",
            first_time_ok,
            acc.delivered,
        ),
        Agreement(
            f"relay {n.relay_records_delivered} / target {n.target_records_ok}",
            relay.get(n.relay_records_delivered, 0),
            int(target.get(n.target_records_ok, 0)),
        ),
        Agreement(
            f"relay {n.relay_records_dead_lettered} / relay's objects in the dead-letter bucket",
            relay.get(n.relay_records_dead_lettered, 0),
            relay_letters,
        ),
    ]
