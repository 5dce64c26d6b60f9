#!/usr/bin/env python3
"""Validate the SAM template offline: no AWS credentials, no network.

cfn-lint on its own checks SAM resources by schema only, so it misses bad runtimes,
out-of-range timeouts, `!Ref` to missing resources and the like. This script:

1. parses the template (CloudFormation short tags included);
2. points every function's CodeUri at a placeholder S3 object (after checking the local
   directory exists and builds the binary its Metadata names), as `sam package` would;
3. translates it to plain CloudFormation with samtranslator;
4. runs cfn-lint on the original and on the translation, failing on any error or warning;
5. checks the inbox table's keys, indexes and TTL attribute against the shape the Rust
   integration tests create in moto, so the two cannot drift apart.

Usage: python scripts/validate_template.py [TEMPLATE]   (default: template.yaml at the repo root)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

# samtranslator resolves the region and partition through boto3: give it one and keep
# botocore away from the instance metadata service. Set before samtranslator is imported.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent

# Keep in step with the table the Rust tests create in moto (tests/ and shared/src/adapters/aws).
INBOX_TABLE = "InboxTable"
INBOX_KEYS = [("pk", "HASH"), ("sk", "RANGE")]
INBOX_INDEXES = {
    "pending-by-time": [("pending", "HASH"), ("sk", "RANGE")],
    "pending-by-agent": [("pending_agent", "HASH"), ("sk", "RANGE")],
}
INBOX_TTL_ATTRIBUTE = "expires_at"

# cfn-lint's exit code is a bit mask: 1 fatal, 2 error, 4 warning, 8 informational.
CFN_LINT_FAILING_BITS = 1 | 2 | 4


class ValidationError(Exception):
    """A problem with the template, reported as one or more lines."""


class OfflinePolicyLoader:
    """Managed-policy loader that needs no AWS: policies here are inline statements."""

    def load(self) -> dict[str, str]:
        return {}


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    resources = template.get("Resources") or {}
    return {name: r for name, r in resources.items() if isinstance(r, dict) and r.get("Type") == kind}


def check_code_uris(template: dict[str, Any], base_dir: Path) -> list[str]:
    """Local CodeUri directories must exist and build the binary their Metadata names."""
    problems = []
    for name, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        code_uri = (resource.get("Properties") or {}).get("CodeUri")
        if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
            continue
        crate_dir = base_dir / code_uri
        manifest = crate_dir / "Cargo.toml"
        if not manifest.is_file():
            problems.append(f"{name}: CodeUri {code_uri!r} has no Cargo.toml")
            continue
        binary = ((resource.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
        if binary is None:
            continue
        cargo = tomllib.loads(manifest.read_text())
        binaries = {cargo.get("package", {}).get("name")} | {b.get("name") for b in cargo.get("bin", [])}
        if binary not in binaries:
            problems.append(f"{name}: Binary {binary!r} is not built by {code_uri}/Cargo.toml")
    return problems


def with_placeholder_code(template: dict[str, Any]) -> dict[str, Any]:
    """What `sam package` would hand CloudFormation: code already uploaded to S3."""
    for name, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        properties = resource.setdefault("Properties", {})
        if "InlineCode" not in properties:
            properties["CodeUri"] = f"s3://placeholder-bucket/{name}.zip"
    for name, resource in resources_of_type(template, "AWS::Serverless::LayerVersion").items():
        resource.setdefault("Properties", {})["ContentUri"] = f"s3://placeholder-bucket/{name}.zip"
    return template


def translate(template: dict[str, Any]) -> dict[str, Any]:
    try:
        return transform(template, {}, OfflinePolicyLoader())
    except InvalidDocumentException as exc:
        raise ValidationError("\n".join(f"SAM: {cause.message}" for cause in exc.causes)) from exc


def key_schema(keys: Any) -> list[tuple[Any, Any]]:
    return [(k.get("AttributeName"), k.get("KeyType")) for k in keys or [] if isinstance(k, dict)]


def check_inbox_table(template: dict[str, Any]) -> list[str]:
    table = resources_of_type(template, "AWS::DynamoDB::Table").get(INBOX_TABLE)
    if table is None:
        return [f"no AWS::DynamoDB::Table named {INBOX_TABLE}"]
    props = table.get("Properties") or {}
    problems = []

    if key_schema(props.get("KeySchema")) != INBOX_KEYS:
        problems.append(f"{INBOX_TABLE} KeySchema is {key_schema(props.get('KeySchema'))}, expected {INBOX_KEYS}")

    indexes = {i.get("IndexName"): i for i in props.get("GlobalSecondaryIndexes") or []}
    if set(indexes) != set(INBOX_INDEXES):
        problems.append(f"{INBOX_TABLE} GSIs are {sorted(map(str, indexes))}, expected {sorted(INBOX_INDEXES)}")
    for index_name, expected in INBOX_INDEXES.items():
        index = indexes.get(index_name)
        if index is None:
            continue
        if key_schema(index.get("KeySchema")) != expected:
            problems.append(f"GSI {index_name} keys are {key_schema(index.get('KeySchema'))}, expected {expected}")
        if (index.get("Projection") or {}).get("ProjectionType") != "ALL":
            problems.append(f"GSI {index_name} must project ALL attributes")

    key_attributes = {name for schema in [INBOX_KEYS, *INBOX_INDEXES.values()] for name, _ in schema}
    defined = {a.get("AttributeName"): a.get("AttributeType") for a in props.get("AttributeDefinitions") or []}
    expected_definitions = {name: "S" for name in key_attributes}
    if defined != expected_definitions:
        problems.append(f"{INBOX_TABLE} AttributeDefinitions are {defined}, expected {expected_definitions}")

    ttl = props.get("TimeToLiveSpecification") or {}
    if ttl.get("AttributeName") != INBOX_TTL_ATTRIBUTE or ttl.get("Enabled") is not True:
        problems.append(f"{INBOX_TABLE} TTL must be enabled on {INBOX_TTL_ATTRIBUTE!r}, found {ttl}")
    return problems


def run_cfn_lint(*paths: Path) -> None:
    # The interpreter running this script is the one whose cfn-lint we pinned.
    command = [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())"]
    result = subprocess.run([*command, "--", *map(str, paths)], capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode & CFN_LINT_FAILING_BITS:
        raise ValidationError(f"cfn-lint failed (exit {result.returncode}):\n{output}")
    if output:
        print(output, file=sys.stderr)


def validate(template_path: Path) -> str:
    text = template_path.read_text()
    try:
        template = yaml_parse(text)
    except Exception as exc:  # yaml errors carry their own line and column
        raise ValidationError(f"cannot parse {template_path}: {exc}") from exc
    if not isinstance(template, dict):
        raise ValidationError(f"{template_path} is not a template mapping")

    problems = check_code_uris(template, template_path.parent) + check_inbox_table(template)
    if problems:
        raise ValidationError("\n".join(problems))

    translated = translate(with_placeholder_code(template))
    tmp = Path(tempfile.mkdtemp(prefix="nexus-template-"))
    translated_path = tmp / "translated.json"
    translated_path.write_text(json.dumps(translated, indent=2))
    try:
        # The original keeps source line numbers (and catches duplicate keys); the
        # translation is what CloudFormation would actually deploy.
        run_cfn_lint(template_path, translated_path)
    except ValidationError as exc:
        raise ValidationError(f"{exc}\n(translated template kept at {translated_path})") from exc
    shutil.rmtree(tmp)

    count = len(translated.get("Resources", {}))
    return f"{template_path.name}: OK (SAM -> {count} CloudFormation resources, cfn-lint clean, inbox table matches tests)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", nargs="?", type=Path, default=REPO_ROOT / "template.yaml")
    args = parser.parse_args()
    try:
        print(validate(args.template.resolve()))
    except ValidationError as exc:
        print(f"template validation FAILED for {args.template}:\n{exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
