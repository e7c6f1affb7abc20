"""Render a stack's template the way Pulumi would, without Pulumi.

    python infra/checks/render.py <stack> [--external-id VALUE] [--binary PATH] > template.json

Builds PULUMI_CONFIG from the `config:` map of Pulumi.<stack>.yaml plus
`cross-account-relay:externalId` (a secret the stack files leave out), then runs the infra
binary with PULUMI_STACK, PULUMI_PROJECT and PULUMI_CONFIG, as the YAML runtime does.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE_EXTERNAL_ID = "example-external-id-0123456789"


def stack_config(stack: str, external_id: str) -> dict:
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data["config"].items()}
    config["cross-account-relay:externalId"] = external_id
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument("--external-id", default=EXAMPLE_EXTERNAL_ID)
    parser.add_argument("--binary", default=str(ROOT / "target/debug/infra"))
    args = parser.parse_args()
    env = dict(os.environ)
    env.update(
        PULUMI_STACK=args.stack,
        PULUMI_PROJECT="cross-account-relay",
        PULUMI_CONFIG=json.dumps(stack_config(args.stack, args.external_id)),
    )
    return subprocess.run([args.binary], env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
