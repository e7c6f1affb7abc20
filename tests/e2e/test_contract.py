"""The Python side's copy of the contracts against their source of truth, the Rust shared crate:
the envelope builders of `local_run.envelope` must produce exactly the shape `infra
--envelope-example` prints, the limits come from `infra --limits`, and the metric names from
`infra --metric-names`."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from local_run import envelope
from local_run.dead_letters import layout
from local_run.envelope import Status
from local_run.infra_command import run_infra
from local_run.limits import limits
from local_run.metrics import EmfError, names, totals


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    printed: dict[str, Any] = json.loads(run_infra("--envelope-example"))
    return printed


def test_a_request_has_the_shared_crates_shape(example: dict[str, Any]) -> None:
    rust_request = example["request"]
    records = [
        envelope.relayed_record(
            sequence_number=rust_record["sequence_number"],
            partition_key=rust_record["partition_key"],
            event_id=rust_record["event_id"],
            data=envelope.record_data(rust_record),
            approximate_arrival_ms=rust_record["approximate_arrival_ms"],
            sub_sequence_number=rust_record.get("sub_sequence_number"),
            explicit_hash_key=rust_record.get("explicit_hash_key"),
        )
        for rust_record in rust_request["records"]
    ]
    # A plain record, then a user record of a KPL aggregate with its optional fields.
    assert "sub_sequence_number" not in rust_request["records"][0]
    assert {"sub_sequence_number", "explicit_hash_key"} <= set(rust_request["records"][1])
    request = envelope.delivery_request(records, rust_request["delivery_id"])
    assert set(request) == set(rust_request)
    for ours, theirs in zip(records, rust_request["records"], strict=True):
        assert set(ours) == set(theirs)
    # Same values too: the data is base64 of the same bytes, the version the same number.
    assert request == rust_request


def test_a_user_records_result_names_its_sub_sequence_number(example: dict[str, Any]) -> None:
    rust_result = example["user_record_result"]
    ours = envelope.record_result(
        rust_result["sequence_number"],
        Status(rust_result["status"]),
        sub_sequence_number=rust_result["sub_sequence_number"],
    )
    assert set(ours) == set(rust_result)
    assert ours == rust_result


def test_a_response_has_the_shared_crates_shape_for_each_status(example: dict[str, Any]) -> None:
    rust_response = example["response"]
    rust_results = {r["status"]: r for r in rust_response["results"]}
    assert set(rust_results) == {str(s) for s in Status}, "a status was added or renamed in the shared crate"
    results = [
        envelope.record_result(r["sequence_number"], Status(r["status"]), r.get("reason"))
        for r in rust_results.values()
    ]
    for ours, theirs in zip(results, rust_results.values(), strict=True):
        assert set(ours) == set(theirs), (ours, theirs)
        assert ours == theirs
    response = envelope.delivery_response(results)
    assert set(response) == set(rust_response)
    assert response["version"] == rust_response["version"] == envelope.ENVELOPE_VERSION


def test_a_result_other_than_ok_says_why() -> None:
    with pytest.raises(ValueError):
        envelope.record_result("1", Status.REJECTED)
    with pytest.raises(ValueError):
        envelope.record_result("1", Status.OK, "no reason to give")


def test_the_limits_are_the_shared_crates() -> None:
    printed = json.loads(run_infra("--limits"))
    ours = dataclasses.asdict(limits())
    assert ours == {name: printed[name] for name in ours}


def test_the_dead_letter_layout_is_the_shared_crates() -> None:
    printed = json.loads(run_infra("--dead-letter-layout"))
    assert dataclasses.asdict(layout()) == printed
    # Lambda's asynchronous prefix lies inside its event source mapping prefix; the relay's does not.
    assert layout().async_prefix.startswith(layout().mapping_prefix)
    assert not layout().relay_prefix.startswith(layout().mapping_prefix)


def emf(**metrics: Any) -> dict[str, Any]:
    """An EMF line of the shape shared::metrics prints, with `metrics` declared and set."""
    n = names()
    declared = [{"Name": name, "Unit": "Count"} for name in metrics]
    directive = {"Namespace": n.namespace, "Dimensions": [[n.dimension]], "Metrics": declared}
    return {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [directive]}, n.dimension: "p-relay", **metrics}


def test_the_metric_names_are_the_shared_crates() -> None:
    printed = json.loads(run_infra("--metric-names"))
    assert {name: printed[name] for name in dataclasses.asdict(names())} == dataclasses.asdict(names())
    assert printed["namespace"] == "CrossAccountRelay" and printed["dimension"] == "FunctionName"


def test_metric_totals_add_counts_and_samples_and_skip_other_lines() -> None:
    lines = [emf(RecordsReceived=3, InvokeLatency=[5, 7]), {"message": "invocation summary"}, emf(RecordsReceived=2)]
    assert totals(lines) == {"RecordsReceived": 5, "InvokeLatency": 12}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ({**emf(RecordsReceived=1), "RecordsReceived": "1"}, "declares RecordsReceived but holds '1'"),
        ({**emf(RecordsReceived=1), "RecordsReceived": []}, "declares RecordsReceived but holds []"),
        ({k: v for k, v in emf(RecordsReceived=1).items() if k != "RecordsReceived"}, "holds None"),
        ({**emf(), "_aws": {"Timestamp": 1, "CloudWatchMetrics": []}}, "without one complete metric directive"),
        ({**emf(), "FunctionName": 3}, "without an integer Timestamp or a FunctionName value"),
    ],
)
def test_a_malformed_metrics_line_is_an_error_naming_the_problem(line: dict[str, Any], problem: str) -> None:
    with pytest.raises(EmfError, match=re.escape(problem)):
        totals([line])


def test_a_metrics_line_in_another_namespace_is_an_error() -> None:
    line = emf(RecordsReceived=1)
    line["_aws"]["CloudWatchMetrics"][0]["Namespace"] = "Other"
    with pytest.raises(EmfError, match="not in namespace CrossAccountRelay"):
        totals([line])
