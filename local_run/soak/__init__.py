"""`make soak`: the local two-account run under a fault matrix, and a ledger checked record by record.

    python -m local_run.soak [--total 100000] [--faults default] [--seed 1] ...

(or TOTAL / FAULTS / SEED in the environment, which `make soak TOTAL=... FAULTS=...` passes on).

The producer Lambda writes most records (one scheduled tick after another); the soak writes the
rest itself, straight into the stream: records that share partition keys (so the order per key
means something: most producer records have a key of their own) and the records that carry the
record-level faults (`local_run.faults`). Everything else is injected where it happens: moto
(throttled Invokes and AssumeRoles, denied AssumeRoles, short-lived credentials, refused
PutRecords entries, failing GetRecords, a refusing dead-letter bucket) and the runtime emulator
(SIGKILLed relay and target processes, a target slower than the relay's timeout). The event
source mapping runs with `parallelizationFactor` above 1 and the relay and the target with
several warm containers each.

It prints progress every second, then the report and one RESULT line, and exits 1 when a
record is lost or unaccounted for, a key's records reached the target out of order (or the
producer failed, or fewer records were produced than asked), 2 on a usage error.

With a slow target (`--slow-target-ms`, SLOW_TARGET_MS: the target spends that long per record)
it runs twice, one Invoke per batch and then key-ordered delivery (the stack's
relayMaxRecordsPerInvocation, `--records-per-invocation`), and compares the records each
delivered per second and their order per key.

The parts, each in its own module:

- `cli`: the command line, read into one `SoakSettings`; `main` and the slow-target comparison;
- `settings`: `SoakSettings`, everything a run is asked to do, frozen;
- `records`: the records the soak writes itself, some marked with record-level faults;
- `run`: one run: the local run started with the settings, driven, drained and measured;
- `analysis`: pure functions over what a run saw (the target's log lines, the dead letters);
- `report`: the report, its health, its RESULT line and the comparison of two runs.
"""
