"""One local two-account run per test session: moto, both accounts, the three release binaries
under the runtime emulator, the event source mapping. Tests share it (starting it costs a few
seconds), so each test accounts only for the record ids it produced, measures counters as
deltas within itself, and restores any setting it changes: the tests pass in any order."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from types import ModuleType

import pytest

from local_run.functions import release_binaries
from local_run.harness import LocalRun, RunSpec
from local_run.infra_command import ROOT
from local_run.limits import limits


@pytest.fixture(scope="session")
def run() -> Iterator[LocalRun]:
    work = ROOT / ".demo" / "e2e"
    spec = RunSpec(
        binaries=release_binaries(work),
        work_dir=work,
        source_settings={"producerRecordsPerInvocation": "5"},
        target_settings={"faultInjection": "true"},
    )
    local_run = LocalRun.start(spec, progress=lambda msg: print(f"[e2e] {msg}", flush=True))
    try:
        yield local_run
    finally:
        local_run.stop()


@pytest.fixture(scope="session")
def launcher() -> ModuleType:
    """`local_run.moto_launcher`, imported with the environment the harness gives its process, for
    tests of its patches against moto in process (`mock_aws`)."""
    os.environ.setdefault("LOCAL_SYNC_PAYLOAD_LIMIT", str(limits().lambda_sync_payload_limit))
    return importlib.import_module("local_run.moto_launcher")
