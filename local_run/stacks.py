"""The two stacks of the program, rendered, and the facts the local run takes from them.

Names, accounts, the region and the cross-account role come from the rendered templates (what
`pulumi up` would create), never from a list kept here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_run.template import Template, TemplateError, render, resolve

# The three functions, each declared as `<name>Function` with the execution role `<name>Role`.
FUNCTIONS = ("producer", "relay", "target")

# The target stack's settings of the local run's test devices, which the committed
# Pulumi.target.yaml leaves off: fault injection (records may ask the target to fail) and the
# sample's effects table (`sampleEffectsTable`: the sample counts each effect it runs, so the soak
# can tell an effect that ran twice). `make demo` and `make soak` run with both.
TEST_DEVICES = {"faultInjection": "true", "sampleEffectsTable": "true"}


@dataclass(frozen=True)
class Stacks:
    source: Template
    target: Template
    region: str
    source_account: str
    target_account: str
    external_id: str  # the secret the example stack files leave out, supplied by the run
    function_names: Mapping[str, str]  # function -> physical name
    function_arns: Mapping[str, str]
    cross_account_role_arn: str

    @classmethod
    def render(
        cls,
        stack_dir: Path,
        *,
        external_id: str,
        source_settings: Mapping[str, str],
        target_settings: Mapping[str, str],
    ) -> Stacks:
        """Renders `Pulumi.source.yaml` and `Pulumi.target.yaml` of `stack_dir` with the
        settings (stack config, as `pulumi config set` would set it) and the external id."""
        source = render("source", stack_dir / "Pulumi.source.yaml", {"externalId": external_id, **source_settings})
        target = render("target", stack_dir / "Pulumi.target.yaml", {"externalId": external_id, **target_settings})
        region, source_account = _provider_account(source)
        target_region, target_account = _provider_account(target)
        if source_account == target_account:
            raise TemplateError(f"both stacks deploy to account {source_account}: the local run needs two accounts")
        if target_region != region:
            raise TemplateError(f"the stacks are in two regions ({region}, {target_region}); the local run has one")
        names = {f: (target if f == "target" else source).literal(f"{f}Function", "name") for f in FUNCTIONS}
        arns = {
            f: f"arn:aws:lambda:{region}:{target_account if f == 'target' else source_account}:function:{name}"
            for f, name in names.items()
        }
        role_arn = f"arn:aws:iam::{target_account}:role/{target.literal('crossAccountRole', 'name')}"
        variables = (source.properties("relayFunction").get("environment") or {}).get("variables") or {}
        where = "source stack, relayFunction.environment.variables.TARGET_ROLE_ARN"
        assumed = resolve(variables.get("TARGET_ROLE_ARN"), {"crossAccountRole.arn": role_arn}, where)
        if assumed != role_arn:
            raise TemplateError(f"the relay assumes {assumed} but the target stack declares {role_arn}")
        return cls(source, target, region, source_account, target_account, external_id, names, arns, role_arn)

    def template_of(self, function: str) -> Template:
        return self.target if function == "target" else self.source

    def account_of(self, function: str) -> str:
        return self.target_account if function == "target" else self.source_account


def _provider_account(template: Template) -> tuple[str, str]:
    """The region and the one account of the stack's explicit aws provider (`allowedAccountIds`)."""
    providers = template.resources_of_type("pulumi:providers:aws")
    if len(providers) != 1:
        raise TemplateError(
            f"the {template.stack} stack declares {len(providers)} aws providers, the local run needs 1"
        )
    logical, provider = providers[0]
    props: Mapping[str, Any] = provider.get("properties") or {}
    accounts = props.get("allowedAccountIds") or []
    region = props.get("region")
    if len(accounts) != 1 or not isinstance(region, str):
        raise TemplateError(f"{template.stack} stack, {logical}: needs one allowedAccountIds entry and a region")
    return region, str(accounts[0])
