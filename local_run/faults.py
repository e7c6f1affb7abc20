"""The fault matrix of `make soak`: which faults the local run injects, where, and how often.

A matrix is parsed from `FAULTS`: `default`, `none`, or `class:rate,...` (e.g.
`target_kill:0.05,dead_letter_refused:0.2`; a list may start with `default,` to change some rates of
the default matrix). Every class has one injector, in one place, and every injection is counted:

- per record (the soak's writer marks the records it writes; counted by the writer):
  `target_retry`, `target_rejected`, `target_function_error`, `malformed`, and, off in the
  default matrix, `handler_killed_after_effect`;
- per invocation, in the runtime emulator (`local_run.runtime_api`, counted by the `FaultInjector`
  of the harness process): `target_slow`, `target_kill`, `relay_kill`;
- per request, in moto (`local_run.moto_launcher`, counted as `fault` lines of moto's audit):
  `target_throttle`, `sts_short_credentials`, `kinesis_put_refused`, `kinesis_get_failed`,
  and the windows `sts_throttle`, `sts_deny`, `dead_letter_refused`.

A rate is a probability per record, invocation, request or PutRecords entry (drawn by each
process's own `FaultInjector`); so that a short run injects every class it names, a class that has
not fired by its `ceil(1 / rate)`-th draw fires at that draw (so at most one hit per class and
process is not drawn, and a long run keeps its rate). The exception is a
window class, where it is the share of wall time the fault is on: the fault is on for
`rate * WINDOW_CYCLE_S` seconds of every `WINDOW_CYCLE_S` seconds (each window class at its own
phase of the cycle, `WINDOW_PHASES`), from the start of the run. A window class has the same
overdue rule, counted in the times it is asked (each AssumeRole, each dead-letter PutObject): one
that has not fired by its `ceil(1 / rate)`-th ask fires at that ask, outside its window. A short
run makes few AssumeRole calls, about ten, and the SDK makes them at moments that follow one
another (each when the cached credentials near expiry), so they could all miss the window.

This module is imported by the moto launcher (another process): it only needs the standard library.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

WINDOW_CYCLE_S = 10.0
# Where in the cycle each window class sits, so the windows do not all open at once (an
# AssumeRole refused as throttled would never be seen refused as denied). At a rate of 0.3 each,
# the STS windows are [7, 10) and [2, 5) s of the cycle: 2 s apart (more at lower rates; the
# short soak's 0.2 gives [8, 10) and [3, 5)), so no AssumeRole is refused for more than one
# window on end, which the mapping's retries outlast (`esm.MappingSettings.retry_max_delay_s`);
# the dead-letter window at 0.3 is [5, 8).
WINDOW_PHASES = {"sts_throttle": 0.0, "sts_deny": 0.5, "dead_letter_refused": 0.8}


@dataclass(frozen=True)
class FaultClass:
    name: str
    where: str  # "records", "runtime" or "moto"
    window: bool  # the rate is a share of wall time, not a probability per event
    default_rate: float
    description: str


CLASSES: dict[str, FaultClass] = {
    c.name: c
    for c in (
        FaultClass(
            "target_retry", "records", False, 0.01, "the target answers `retry` for a record, once or twice (transient)"
        ),
        FaultClass(
            "target_rejected", "records", False, 0.002, "the target answers `rejected` (an empty message: permanent)"
        ),
        FaultClass(
            "target_function_error",
            "records",
            False,
            0.001,
            "a record makes the target fail the whole invocation, every time (a poison record)",
        ),
        FaultClass(
            "malformed",
            "records",
            False,
            0.003,
            "a record that is not JSON, lacks the record's fields, or is near 1 MiB",
        ),
        FaultClass(
            "handler_killed_after_effect",
            "records",
            False,
            0.0,
            "the target's process aborts right after a record's effect first ran, before the library stores "
            "its completion (the one case the idempotency store cannot cover; off in the default matrix)",
        ),
        FaultClass(
            "target_slow",
            "runtime",
            False,
            0.005,
            "a target invocation runs past the relay's timeout (the relay abandons that Invoke at its deadline and hands its records back)",
        ),
        FaultClass(
            "target_kill", "runtime", False, 0.005, "a target process is SIGKILLed as it answers, then restarted"
        ),
        FaultClass("relay_kill", "runtime", False, 0.005, "a relay process is SIGKILLed as it answers, then restarted"),
        FaultClass("target_throttle", "moto", False, 0.02, "Invoke of the target answers 429 TooManyRequestsException"),
        FaultClass("sts_throttle", "moto", True, 0.05, "AssumeRole answers Throttling (400) during a window"),
        FaultClass("sts_deny", "moto", True, 0.05, "AssumeRole answers AccessDenied during a window"),
        FaultClass(
            "sts_short_credentials",
            "moto",
            False,
            1.0,
            "assumed-role credentials that expire 20 s after they are issued (the relay must refresh them)",
        ),
        FaultClass(
            "kinesis_put_refused",
            "moto",
            False,
            0.02,
            "a PutRecords entry is refused (ProvisionedThroughputExceededException), the others are written",
        ),
        FaultClass(
            "kinesis_get_failed",
            "moto",
            False,
            0.02,
            "GetRecords fails (ProvisionedThroughputExceededException) on the polling side",
        ),
        FaultClass(
            "dead_letter_refused", "moto", True, 0.1, "PutObject to the dead-letter bucket fails during a window"
        ),
    )
}

# How long assumed-role credentials live under `sts_short_credentials`.
SHORT_CREDENTIALS_S = 20


class FaultMatrixError(ValueError):
    pass


def parse_matrix(text: str) -> dict[str, float]:
    """`default`, `none` or `class:rate,...` (optionally starting with `default,`) -> rates."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise FaultMatrixError("FAULTS is empty: use `default`, `none`, or `class:rate,...`")
    rates: dict[str, float] = {}
    if items[0] in ("default", "none"):
        if items[0] == "default":
            rates = {name: c.default_rate for name, c in CLASSES.items()}
        items = items[1:]
    for item in items:
        name, sep, value = item.partition(":")
        if name not in CLASSES:
            known = ", ".join(CLASSES)
            raise FaultMatrixError(f"FAULTS: unknown fault class {name!r}; the classes are: {known}")
        try:
            rate = float(value) if sep else float("nan")
        except ValueError:
            rate = float("nan")
        if not 0.0 <= rate <= 1.0:  # also refuses nan
            raise FaultMatrixError(f"FAULTS: {item!r} needs a rate from 0 to 1, as in {name}:0.05")
        rates[name] = rate
    return {name: rate for name, rate in rates.items() if rate > 0}


class FaultInjector:
    """Decides, for one process, whether a fault of a class fires now, and counts what fired."""

    def __init__(self, rates: Mapping[str, float], *, seed: int, started_at: float) -> None:
        unknown = set(rates) - set(CLASSES)
        if unknown:
            raise FaultMatrixError(f"unknown fault classes {sorted(unknown)}")
        self.rates = dict(rates)
        self.started_at = started_at
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self._draws: Counter[str] = Counter()

    @classmethod
    def from_json(cls, text: str) -> FaultInjector:
        doc = json.loads(text)
        return cls(doc["rates"], seed=int(doc["seed"]), started_at=float(doc["started_at"]))

    def to_json(self, seed_offset: int = 0) -> str:
        """What another process needs to inject the same matrix (with its own random stream)."""
        return json.dumps(
            {"rates": self.rates, "seed": self._random.getrandbits(32) + seed_offset, "started_at": self.started_at}
        )

    def window_on(self, name: str, now: float | None = None) -> bool:
        rate = self.rates.get(name, 0.0)
        if rate <= 0:
            return False
        since = (now if now is not None else time.time()) - self.started_at
        into_cycle = (since - WINDOW_PHASES.get(name, 0.0) * WINDOW_CYCLE_S) % WINDOW_CYCLE_S
        return into_cycle >= WINDOW_CYCLE_S * (1 - rate)

    def fire(self, name: str) -> bool:
        """Whether a fault of `name` is injected now; counted when it is. A class that has not
        fired by its `ceil(1 / rate)`-th draw (a window class: ask) fires at that draw (see the
        module docs)."""
        rate = self.rates.get(name, 0.0)
        if rate <= 0:
            return False
        with self._lock:
            self._draws[name] += 1
            drawn = self.window_on(name) if CLASSES[name].window else self._random.random() < rate
            hit = drawn or (self.injected[name] == 0 and self._draws[name] >= math.ceil(1 / rate))
        if hit:
            with self._lock:
                self.injected[name] += 1
        return hit

    def choose(self, options: int) -> int:
        with self._lock:
            return self._random.randrange(options)


def describe_matrix(rates: Mapping[str, float]) -> str:
    if not rates:
        return "no faults"
    return ", ".join(f"{name}:{rate:g}" for name, rate in sorted(rates.items()))
