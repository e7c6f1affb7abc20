"""The local two-account run of cross-account-relay: the data path on one machine.

moto plays both AWS accounts (`local_run.moto_server`, `local_run.moto_launcher`), the release binaries
run under a Lambda runtime API emulator (`local_run.runtime_api`), the harness plays the schedule
and the Kinesis event source mapping (`local_run.esm`), and a ledger proves that no record was lost
(`local_run.ledger`). `local_run.harness.LocalRun` puts them together for `make demo` (`local_run.demo`)
and the end-to-end tests (tests/e2e). Facts the Rust code owns (AWS limits, the envelope's shape,
the rendered stacks) are read from the `infra` binary (`local_run.infra_command`), never typed again.
"""
