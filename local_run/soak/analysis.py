"""What a soak run saw, worked out by pure functions (no run, no I/O): the target's log lines
(duplicates and the order per key), the effects the sample counted in its table (effects run
more than once), the dead letters by reason, the accounting record by record, and the faults
injected."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from local_run.envelope import RELAY_KINDS
from local_run.ledger import Effect, letter_record_id


# ---- what the target saw ----
@dataclass(frozen=True)
class Deliveries:
    """Duplicates and the order per partition key, from the target's log lines."""

    delivered_more_than_once: int  # ids the target answered ok twice or more
    recognised_by_dedup: int  # ... of which the target flagged a later delivery as a duplicate
    order_violations: int
    violations_sample: list[str]
    delivered: frozenset[str]  # ids the target answered ok at least once
    last_ok_at: float | None = None  # when the target logged its last ok (epoch seconds)


def analyse_deliveries(lines: Iterable[Mapping[str, Any]], key_of: Mapping[str, str]) -> Deliveries:
    """Duplicates and the order per partition key, from the target's `record processed` lines in
    the order they were logged. A key's sequence numbers must rise, apart from redeliveries: a
    sequence number below the highest one seen for its key that was never seen before is a
    violation (a later record of the key overtook it)."""
    ok_count: Counter[str] = Counter()
    flagged: set[str] = set()
    highest: dict[str, int] = {}
    seen: dict[str, set[int]] = {}
    violations: list[str] = []
    last_ok_at: float | None = None
    for line in lines:
        rid = str(line.get("record_id"))
        try:
            seq = int(line.get("sequence_number", ""))
        except ValueError:
            continue
        key = key_of.get(rid, rid)
        if line.get("outcome") == "ok":
            ok_count[rid] += 1
            if ok_count[rid] > 1 and line.get("duplicate") is True:
                flagged.add(rid)
            last_ok_at = max(last_ok_at or 0.0, logged_at(line))
        key_seen = seen.setdefault(key, set())
        if seq < highest.get(key, -1) and seq not in key_seen:
            violations.append(f"{key}: {seq} after {highest[key]}")
        key_seen.add(seq)
        highest[key] = max(highest.get(key, -1), seq)
    twice = {rid for rid, n in ok_count.items() if n > 1}
    return Deliveries(
        len(twice), len(twice & flagged), len(violations), violations[:5], frozenset(ok_count), last_ok_at
    )


def logged_at(line: Mapping[str, Any]) -> float:
    """A log line's `timestamp` (RFC 3339, UTC) in epoch seconds; 0 when it has none."""
    try:
        return datetime.datetime.fromisoformat(str(line["timestamp"])).timestamp()
    except (KeyError, ValueError):
        return 0.0


# ---- what the sample's effects table says ----
@dataclass(frozen=True)
class Effects:
    """Records whose effect ran more than once, from the sample's effects table."""

    duplicated: list[str]  # ... more often than the kills explain (the store failed them)
    repeated_after_kill: list[str]  # ... exactly as often as the kills explain
    kill_deliveries: frozenset[str]  # the deliveries a handler_killed_after_effect kill ended


def count_effects(effects: Mapping[str, Effect], kill_marked: Iterable[str]) -> Effects:
    """Sorts the records whose effect ran more than once (`effects`: the table's items by record
    id; `kill_marked`: the ids the writer marked `handler_killed_after_effect`).

    Attribution: the sample aborts its process right after a kill-marked record's *first*
    effect, so the delivery that record's effect first ran under (its `first_delivery`) is a
    delivery the kill ended: every record whose effect ran in it had run its effect and never had
    its completion stored, so the next delivery after its claim expired ran it once more. Each
    of a record's runs under a kill delivery therefore explains one further run, and nothing
    else does: a record with more runs than 1 + its runs under kill deliveries is `duplicated`
    (what the idempotency store should have prevented); one whose every extra run is so explained
    is `repeated_after_kill`. A record of a kill delivery that had not run its effect when the
    process ended has no run under it, and any repeat of it counts as duplicated."""
    kill_deliveries = frozenset(e.first_delivery for rid, e in effects.items() if rid in set(kill_marked))
    duplicated: list[str] = []
    repeated: list[str] = []
    for rid, effect in effects.items():
        if effect.applied <= 1:
            continue
        explained = len(effect.deliveries & kill_deliveries)
        (duplicated if effect.applied - 1 > explained else repeated).append(rid)
    return Effects(sorted(duplicated), sorted(repeated), kill_deliveries)


# ---- what was dead-lettered ----
def dead_letters_by_reason(
    letters: Iterable[dict[str, Any]], ids_in_range: Callable[[dict[str, Any]], Iterable[str]], wanted: set[str]
) -> dict[str, set[str]]:
    """Record ids of `wanted` per reason they were dead-lettered for (a record can have several),
    from the dead-letter bucket's documents: the relay's own name their record (`letter_record_id`), the mapping's on-failure records are read as their `KinesisBatchInfo` range (through
    `ids_in_range`, as an operator would), and a document of neither kind counts as
    `unknown_message`."""
    ids: dict[str, set[str]] = {}
    for m in letters:
        kind = m.get("kind")
        if kind in RELAY_KINDS:
            reason, batch = str(kind), {letter_record_id(m)} & wanted
        elif "KinesisBatchInfo" in m:
            condition = (m.get("requestContext") or {}).get("condition", "unknown")
            reason, batch = f"on_failure_{condition}", set(ids_in_range(m["KinesisBatchInfo"])) & wanted
        else:
            reason, batch = "unknown_message", set()
        ids.setdefault(reason, set()).update(str(i) for i in batch)
    return ids


@dataclass(frozen=True)
class Exact:
    """The accounting record by record against what was really dead-lettered: the relay's own
    dead letters name their record, and the mapping's on-failure batches are taken from the
    mapping itself (`MappingStats.on_failure_ids`), not from the sequence-number range of Lambda's
    on-failure record, which with parallelizationFactor > 1 also spans other lanes' records (so a
    record lost in another lane would look dead-lettered)."""

    dead_lettered: int  # never delivered, dead-lettered
    on_failure: int  # ... of which by the mapping's on-failure destination
    delivered_and_dead_lettered: int
    lost_ids: list[str]
    range_only: int  # never delivered, "dead-lettered" only by an on-failure range it was not in


def relay_letter_ids(by_reason: Mapping[str, set[str]]) -> set[str]:
    """The ids named by the relay's own dead letters: `by_reason` apart from the on-failure ranges."""
    return set().union(*(ids for reason, ids in by_reason.items() if not reason.startswith("on_failure_")))


def dead_letter_ids(on_failure_ids: Iterable[str], by_reason: Mapping[str, set[str]]) -> set[str]:
    """Every id really dead-lettered: named by one of the relay's dead letters (`relay_letter_ids`)
    or in a batch the mapping sent to its on-failure destination."""
    return relay_letter_ids(by_reason) | set(on_failure_ids)


def exact_accounting(
    wanted: set[str], on_failure_ids: Iterable[str], by_reason: Mapping[str, set[str]], delivered: frozenset[str]
) -> Exact:
    """`wanted` (the ids produced) accounted for: delivered, dead-lettered by the relay (`by_reason`,
    apart from the on-failure ranges) or in a batch the mapping sent to its on-failure destination
    (`on_failure_ids`), or lost."""
    on_failure = set(on_failure_ids) & wanted
    dead = dead_letter_ids(on_failure_ids, by_reason) & wanted
    by_range = set().union(*(ids for reason, ids in by_reason.items() if reason.startswith("on_failure_")))
    return Exact(
        dead_lettered=len(dead - delivered),
        on_failure=len(on_failure - delivered),
        delivered_and_dead_lettered=len(dead & delivered),
        lost_ids=sorted(wanted - delivered - dead),
        range_only=len(by_range - dead - delivered),
    )


# The fault classes injected into records themselves: the target refuses them, cannot read them,
# fails on them every time (a poison record), or answers `retry` once or twice (counted per
# container, so under many container restarts such a record can use up the mapping's retries and
# be dead-lettered on its own account). A good record is one none of them marked.
RECORD_FAULTS = ("target_rejected", "malformed", "target_function_error", "target_retry")
POISON = "target_function_error"


@dataclass(frozen=True)
class GoodDeadLettered:
    """Good records dead-lettered and never delivered, by why (ids, sorted)."""

    # In one of the relay's dead letters, or in an on-failure batch that held a poison record:
    # `poison_collateral`, which must be 0.
    collateral: list[str]
    # Only in on-failure batches without a poison record: the mapping gave the batch up because
    # the fault load used up its retries (`maximumRetryAttempts`) or the records' age.
    # `mapping_gave_up`, reported; the records are in the dead-letter bucket with their data.
    mapping_gave_up: list[str]


def good_dead_lettered(
    wanted: set[str],
    marked: Mapping[str, list[str]],
    by_reason: Mapping[str, set[str]],
    on_failure_sent: Iterable[Iterable[str]],
    delivered: frozenset[str],
) -> GoodDeadLettered:
    """Good records of `wanted` (no record fault of `RECORD_FAULTS` marked them) that were
    dead-lettered and never delivered, split by why. Before the relay isolated poison records, a
    poison record took its whole envelope (and with it the batch) to the on-failure destination:
    those good neighbours are the collateral, as is a good record in any of the relay's own dead
    letters (`by_reason`, apart from the on-failure ranges). A good record found only in the
    mapping's on-failure batches (`on_failure_sent`, the exact ids of each batch) that held no
    poison record was given up by the mapping for the fault load alone."""
    bad = set().union(*(marked.get(fault, []) for fault in RECORD_FAULTS))
    poison = set(marked.get(POISON, []))
    batches = [set(batch) for batch in on_failure_sent]
    relay_letters = relay_letter_ids(by_reason)
    good_dead = (wanted & (relay_letters | set().union(*batches))) - bad - delivered
    with_poison = set().union(*(batch for batch in batches if batch & poison))
    gave_up = good_dead - relay_letters - with_poison
    return GoodDeadLettered(collateral=sorted(good_dead - gave_up), mapping_gave_up=sorted(gave_up))


# ---- what was injected ----
def injected(here: Mapping[str, int], audit: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Faults injected in this process (`here`: records, runtime) and in moto (its audit's fault lines)."""
    counts = Counter(here)
    counts.update(e["class"] for e in audit if e.get("event") == "fault")
    return counts
