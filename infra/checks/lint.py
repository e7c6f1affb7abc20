"""Lint every extracted policy document with parliament.

    python infra/checks/lint.py <dir written by `iam.mjs extract`>

Identity, bucket and topic policies must have no finding at all. Trust and key policies are resource policies,
which parliament reads as identity policies, so exactly two known findings are waived there:
MALFORMED "neither Resource nor NotResource" on a trust policy (trust policies have no
Resource) and RESOURCE_STAR on the key policy (in a key policy `*` means the key itself).
A self-test lints a policy with a misspelt action and fails unless parliament reports it.
"""

import json
import pathlib
import subprocess
import sys
import tempfile

PARLIAMENT = str(pathlib.Path(sys.executable).with_name("parliament"))


def findings(files: list[pathlib.Path]) -> list[dict]:
    if not files:
        return []
    out = subprocess.run(
        [PARLIAMENT, "--json", "--files", ",".join(str(f) for f in files)],
        capture_output=True,
        text=True,
    )
    if out.returncode not in (0, 1) or (out.returncode == 1 and not out.stdout.strip()):
        raise SystemExit(f"lint: parliament failed: {out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def waived(kind: str, finding: dict) -> bool:
    if kind == "trust":
        return finding["issue"] == "MALFORMED" and "neither Resource nor NotResource" in str(finding.get("detail"))
    if kind == "key":
        return finding["issue"] == "RESOURCE_STAR"
    return False


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    problems, waivers, count = [], 0, 0
    for kind in ("identity", "trust", "key", "bucket", "topic"):
        files = sorted((root / kind).glob("*.json"))
        count += len(files)
        for f in findings(files):
            if waived(kind, f):
                waivers += 1
            else:
                problems.append(f)
    for p in problems:
        print(
            f"lint: {p['issue']} ({p['severity']}) in {p['location'].get('filepath')}: {p.get('detail')}",
            file=sys.stderr,
        )

    with tempfile.TemporaryDirectory() as tmp:
        bad = pathlib.Path(tmp) / "misspelt.json"
        bad.write_text(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["kinesis:GetRecord"],
                            "Resource": ["arn:aws:kinesis:eu-west-1:111111111111:stream/s"],
                        }
                    ],
                }
            )
        )
        self_test_ok = any(f["issue"] == "UNKNOWN_ACTION" for f in findings([bad]))
    if not self_test_ok:
        print("lint: self-test FAILED: parliament did not report a misspelt action", file=sys.stderr)
    if count == 0:
        print(f"lint: no policy documents under {root}: nothing was checked", file=sys.stderr)
    status = "OK" if not problems and self_test_ok and count > 0 else "FAILED"
    print(
        f"lint: parliament: {count} policy documents, {len(problems)} findings, {waivers} waived "
        f"(trust policies have no Resource; a key policy's Resource is *), self-test {'ok' if self_test_ok else 'FAILED'} — {status}"
    )
    return 0 if status == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
