#!/usr/bin/env python3
"""What the target library's DynamoDB idempotency store adds to a delivery, against moto.

Per delivery size (1, 10, 100, 500 records) and share of records already completed by an earlier
delivery (0% and 50%, rounded down): a delivery is one `claim` of all its keys and one `complete` that stores
an Ok answer for every key it claimed, as the library does. Printed per row:
  - store round trips per delivery and per record (TransactWriteItems and BatchGetItem requests,
    counted by the store itself);
  - ms per delivery added by the store (claim + complete, wall time in the store process), the
    median over the repetitions.

The store runs in the example binary `store_check` (dev build), the table in moto's DynamoDB on
loopback (`local_run.store_check`). The round trips are those DynamoDB would see (moto answers
cancellation reasons with the failed items, as DynamoDB does); the milliseconds are moto's, not
DynamoDB's: on AWS a transactional write of up to 100 items takes its own time per request, so
read them as the number of sequential requests a delivery waits for, not as a latency forecast.
Numbers are printed, not asserted.

Usage: python -m bench.idempotency [--repeats 5]   (the Makefile target `bench` runs it)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from local_run.store_check import StoreCheck, store_on_moto

SIZES = (1, 10, 100, 500)
COMPLETED_SHARES = (0.0, 0.5)
TABLE = "bench-idempotency"
NOW = 1_800_000_000
CLAIM_S = 60
KEEP_S = 14 * 86_400


def delivery(check: StoreCheck, keys: list[str], owner: str) -> tuple[int, float]:
    """One delivery's store work: (round trips, ms)."""
    claimed = check.claim(keys, owner, NOW, NOW + CLAIM_S)
    if "error" in claimed:
        raise RuntimeError(f"claim failed: {claimed['error']}")
    mine = [key for key, claim in zip(keys, claimed["claims"], strict=True) if claim == "claimed"]
    done = check.complete(owner, [(key, "ok") for key in mine], [], NOW + KEEP_S)
    if "error" in done:
        raise RuntimeError(f"complete failed: {done['error']}")
    return claimed["round_trips"] + done["round_trips"], claimed["ms"] + done["ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="deliveries measured per row (after one warm-up)")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="bench-idempotency-") as logs,
        store_on_moto(Path(logs), TABLE) as (
            check,
            _,
        ),
    ):
        print("DynamoDB idempotency store per delivery (moto on loopback, dev build of the store)")
        print(f"{'records':>8} {'completed':>10} {'round trips':>12} {'per record':>11} {'ms (median)':>12}")
        serial = 0
        for size in SIZES:
            # Of one record, half is none: that row is the 0% row again.
            for completed in sorted({int(size * share) for share in COMPLETED_SHARES}):
                trips: list[int] = []
                times: list[float] = []
                for repeat in range(args.repeats + 1):
                    serial += 1
                    keys = [f"d{serial}/{i}" for i in range(size)]
                    done_before = keys[:completed]
                    if done_before:
                        delivery(check, done_before, f"earlier-{serial}")
                    rt, ms = delivery(check, keys, f"delivery-{serial}")
                    if repeat:  # the first is a warm-up
                        trips.append(rt)
                        times.append(ms)
                rt_median = statistics.median(trips)
                print(
                    f"{size:>8} {completed:>10} {rt_median:>12g} {rt_median / size:>11.3f} "
                    f"{statistics.median(times):>12.1f}"
                )


if __name__ == "__main__":
    main()
