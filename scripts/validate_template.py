#!/usr/bin/env python3
"""Validate the SAM template offline: no AWS credentials, no network.

cfn-lint on its own checks SAM resources by schema only, so it misses bad runtimes,
out-of-range timeouts, `!Ref` to missing resources and the like. This script:

1. parses the template (CloudFormation short tags included);
2. points every function's CodeUri at a placeholder S3 object (after checking the local
   directory exists and builds the binary its Metadata names), as `sam package` would;
3. translates it to plain CloudFormation with samtranslator;
4. runs cfn-lint on the original and on the translation, failing on any error or warning;
5. checks the inbox and outbound tables' keys, indexes and TTL attribute against the
   shape the Rust integration tests create in moto, so the two cannot drift apart;
6. checks the delivery pipeline's numbers agree: the queue's visibility outlasts an
   attempt and the deliver function, its redrive leaves room for every attempt, the
   event source reports batch item failures, and every function gets the settings;
7. checks the stranded-delivery sweep: scheduled by rate(), done before its next run,
   and waiting well past the queue's visibility before it re-enqueues anything.

Usage: python scripts/validate_template.py [TEMPLATE]   (default: template.yaml at the repo root)
"""

from __future__ import annotations

import argparse
import json
import os
import re
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

OUTBOUND_TABLE = "OutboundTable"
OUTBOUND_KEYS = [("pk", "HASH"), ("sk", "RANGE")]
OUTBOUND_INDEXES = {
    "deliveries-newest": [("dlv_list", "HASH"), ("dlv_id", "RANGE")],
    "deliveries-by-subscription": [("dlv_sub", "HASH"), ("dlv_id", "RANGE")],
    "deliveries-by-status": [("dlv_status", "HASH"), ("dlv_id", "RANGE")],
    "deliveries-by-subscription-status": [("dlv_sub_status", "HASH"), ("dlv_id", "RANGE")],
}
OUTBOUND_TTL_ATTRIBUTE = "expires_at"

DELIVERY_QUEUE = "DeliveryQueue"
DEAD_LETTER_QUEUE = "DeliveryDeadLetterQueue"
DELIVER_FUNCTION = "DeliverFunction"
# Beyond one attempt: the store and queue calls around it (seconds).
ATTEMPT_MARGIN = 10
# Receives beyond one per attempt: rate-limit re-queues, crashed invocations.
RECEIVE_MARGIN = 50
# What every function reads at start-up (Config::from_env, adapters::aws::app_state).
OUTBOUND_ENVIRONMENT = {
    "NEXUS_OUTBOUND_TABLE": {"Ref": OUTBOUND_TABLE},
    "NEXUS_QUEUE_URL": {"Ref": DELIVERY_QUEUE},
    "NEXUS_DLQ_URL": {"Ref": DEAD_LETTER_QUEUE},
    "WEBHOOK_MAX_RETRIES": {"Ref": "WebhookMaxRetries"},
    "WEBHOOK_INITIAL_DELAY": {"Ref": "WebhookInitialDelay"},
    "WEBHOOK_MAX_DELAY": {"Ref": "WebhookMaxDelay"},
    "WEBHOOK_TIMEOUT": {"Ref": "WebhookTimeout"},
}

SWEEP_FUNCTION = "SweepFunction"
SWEEP_PARAMETER = "SweepAfter"
# A message hidden after a crashed invocation is back after one visibility timeout; the
# sweep waits at least this many of them before it calls a delivery stranded.
SWEEP_VISIBILITY_FACTOR = 2
RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}

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


def check_table(
    template: dict[str, Any],
    name: str,
    keys: list[tuple[str, str]],
    indexes_expected: dict[str, list[tuple[str, str]]],
    projection: str,
    ttl_attribute: str,
) -> list[str]:
    table = resources_of_type(template, "AWS::DynamoDB::Table").get(name)
    if table is None:
        return [f"no AWS::DynamoDB::Table named {name}"]
    props = table.get("Properties") or {}
    problems = []

    if key_schema(props.get("KeySchema")) != keys:
        problems.append(f"{name} KeySchema is {key_schema(props.get('KeySchema'))}, expected {keys}")

    indexes = {i.get("IndexName"): i for i in props.get("GlobalSecondaryIndexes") or []}
    if set(indexes) != set(indexes_expected):
        problems.append(f"{name} GSIs are {sorted(map(str, indexes))}, expected {sorted(indexes_expected)}")
    for index_name, expected in indexes_expected.items():
        index = indexes.get(index_name)
        if index is None:
            continue
        if key_schema(index.get("KeySchema")) != expected:
            problems.append(f"GSI {index_name} keys are {key_schema(index.get('KeySchema'))}, expected {expected}")
        if (index.get("Projection") or {}).get("ProjectionType") != projection:
            problems.append(f"GSI {index_name} must have projection {projection}")

    key_attributes = {attr for schema in [keys, *indexes_expected.values()] for attr, _ in schema}
    defined = {a.get("AttributeName"): a.get("AttributeType") for a in props.get("AttributeDefinitions") or []}
    expected_definitions = {attr: "S" for attr in key_attributes}
    if defined != expected_definitions:
        problems.append(f"{name} AttributeDefinitions are {defined}, expected {expected_definitions}")

    ttl = props.get("TimeToLiveSpecification") or {}
    if ttl.get("AttributeName") != ttl_attribute or ttl.get("Enabled") is not True:
        problems.append(f"{name} TTL must be enabled on {ttl_attribute!r}, found {ttl}")
    return problems


def check_tables(template: dict[str, Any]) -> list[str]:
    return check_table(
        template, INBOX_TABLE, INBOX_KEYS, INBOX_INDEXES, "ALL", INBOX_TTL_ATTRIBUTE
    ) + check_table(
        template, OUTBOUND_TABLE, OUTBOUND_KEYS, OUTBOUND_INDEXES, "KEYS_ONLY", OUTBOUND_TTL_ATTRIBUTE
    )


def number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_delivery_pipeline(template: dict[str, Any]) -> list[str]:
    """The queue, the deliver function and the WEBHOOK_* settings must agree."""
    problems: list[str] = []
    parameters = template.get("Parameters") or {}
    queues = resources_of_type(template, "AWS::SQS::Queue")
    functions = resources_of_type(template, "AWS::Serverless::Function")
    queue = (queues.get(DELIVERY_QUEUE) or {}).get("Properties")
    function = (functions.get(DELIVER_FUNCTION) or {}).get("Properties")
    if queue is None or DEAD_LETTER_QUEUE not in queues or function is None:
        return [f"expected AWS::SQS::Queue {DELIVERY_QUEUE} and {DEAD_LETTER_QUEUE}, and {DELIVER_FUNCTION}"]

    attempt_limit = number((parameters.get("WebhookTimeout") or {}).get("MaxValue"))
    max_retries = number((parameters.get("WebhookMaxRetries") or {}).get("MaxValue"))
    if attempt_limit is None or max_retries is None:
        problems.append("parameters WebhookTimeout and WebhookMaxRetries need a MaxValue to check against")
        return problems

    function_timeout = number(function.get("Timeout"))
    if function_timeout is None or function_timeout < attempt_limit + ATTEMPT_MARGIN:
        problems.append(
            f"{DELIVER_FUNCTION} Timeout {function_timeout} must be at least the longest attempt "
            f"(WebhookTimeout MaxValue {attempt_limit:g}) + {ATTEMPT_MARGIN} s"
        )
    visibility = number(queue.get("VisibilityTimeout"))
    if visibility is None or visibility < max(function_timeout or 0, attempt_limit + 30):
        problems.append(
            f"{DELIVERY_QUEUE} VisibilityTimeout {visibility} must be at least {DELIVER_FUNCTION}'s "
            f"Timeout and the longest attempt + 30 s, or a slow attempt is sent twice"
        )

    redrive = queue.get("RedrivePolicy") or {}
    if redrive.get("deadLetterTargetArn") != {"Fn::GetAtt": [DEAD_LETTER_QUEUE, "Arn"]}:
        problems.append(f"{DELIVERY_QUEUE} must redrive to {DEAD_LETTER_QUEUE}")
    receives = number(redrive.get("maxReceiveCount"))
    least = max_retries + 1 + RECEIVE_MARGIN
    if receives is None or receives < least:
        problems.append(
            f"{DELIVERY_QUEUE} maxReceiveCount {receives} must be at least {least:g}: every attempt "
            f"(WebhookMaxRetries MaxValue {max_retries:g} + 1) is a receive, and so is every "
            f"rate-limit wait ({RECEIVE_MARGIN} more)"
        )

    mappings = [
        props
        for props in (
            (r.get("Properties") or {})
            for r in resources_of_type(template, "AWS::Lambda::EventSourceMapping").values()
        )
        if props.get("FunctionName") == {"Ref": DELIVER_FUNCTION}
    ]
    if len(mappings) != 1:
        problems.append(f"{DELIVER_FUNCTION} needs exactly one AWS::Lambda::EventSourceMapping")
    for mapping in mappings:
        if mapping.get("EventSourceArn") != {"Fn::GetAtt": [DELIVERY_QUEUE, "Arn"]}:
            problems.append(f"{DELIVER_FUNCTION}'s event source must be {DELIVERY_QUEUE}")
        if "ReportBatchItemFailures" not in (mapping.get("FunctionResponseTypes") or []):
            problems.append(f"{DELIVER_FUNCTION}'s event source must use ReportBatchItemFailures")

    environment = (
        ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    ).get("Variables") or {}
    for variable, value in OUTBOUND_ENVIRONMENT.items():
        if environment.get(variable) != value:
            problems.append(f"Globals must set {variable} to {value}, found {environment.get(variable)}")
    return problems


def check_sweep(template: dict[str, Any]) -> list[str]:
    """The sweep runs on a rate, never overlaps itself, and cannot double a live message."""
    function = (resources_of_type(template, "AWS::Serverless::Function").get(SWEEP_FUNCTION) or {}).get(
        "Properties"
    )
    if function is None:
        return [f"expected AWS::Serverless::Function {SWEEP_FUNCTION}"]
    problems: list[str] = []
    schedules = [
        (e.get("Properties") or {}).get("Schedule")
        for e in (function.get("Events") or {}).values()
        if isinstance(e, dict) and e.get("Type") == "Schedule"
    ]
    rate = None
    if len(schedules) == 1 and isinstance(schedules[0], str):
        rate = re.fullmatch(r"rate\((\d+) (\w+)\)", schedules[0])
    if rate is None or rate.group(2) not in RATE_UNITS:
        problems.append(f"{SWEEP_FUNCTION} needs exactly one Schedule event with a rate(...), found {schedules}")
    else:
        interval = int(rate.group(1)) * RATE_UNITS[rate.group(2)]
        timeout = number(function.get("Timeout"))
        if timeout is None or timeout >= interval:
            problems.append(
                f"{SWEEP_FUNCTION} Timeout {timeout} must be under its schedule's {interval} s, "
                f"or two sweeps could enqueue the same deliveries"
            )
    variables = (function.get("Environment") or {}).get("Variables") or {}
    if variables.get("NEXUS_SWEEP_AFTER") != {"Ref": SWEEP_PARAMETER}:
        problems.append(f"{SWEEP_FUNCTION} must set NEXUS_SWEEP_AFTER to {{'Ref': {SWEEP_PARAMETER!r}}}")
    least = number(((template.get("Parameters") or {}).get(SWEEP_PARAMETER) or {}).get("MinValue"))
    queue = (resources_of_type(template, "AWS::SQS::Queue").get(DELIVERY_QUEUE) or {}).get("Properties") or {}
    visibility = number(queue.get("VisibilityTimeout"))
    if least is None or visibility is None or least < SWEEP_VISIBILITY_FACTOR * visibility:
        problems.append(
            f"parameter {SWEEP_PARAMETER} MinValue {least} must be at least {SWEEP_VISIBILITY_FACTOR} x "
            f"{DELIVERY_QUEUE}'s VisibilityTimeout ({visibility}): a message hidden after a crashed "
            f"invocation must not be taken for a missing one"
        )
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

    problems = (
        check_code_uris(template, template_path.parent)
        + check_tables(template)
        + check_delivery_pipeline(template)
        + check_sweep(template)
    )
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
    return f"{template_path.name}: OK (SAM -> {count} CloudFormation resources, cfn-lint clean, tables match tests, delivery settings agree, sweep safe)"


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
