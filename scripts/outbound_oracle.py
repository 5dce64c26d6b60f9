#!/usr/bin/env python3
"""Verify captured outbound deliveries with code no one here wrote.

Two independent verifiers judge every delivery a test receiver captured from the gateway:

  webhook-id / webhook-timestamp / webhook-signature
      the PyPI `standardwebhooks` package: Webhook(secret).verify(body, headers)
  X-Nexus-Signature-256 (with X-Nexus-Timestamp)
      the brief's own Python `verify_webhook`, copied verbatim below

Each delivery must verify with its `nexus_secret` (the brief's header) and with every one
of its `standard_secrets` (during a secret rotation the old and the new secret must both
verify `webhook-signature`). So that a verifier that accepts anything cannot pass, every
delivery is also checked the other way: the same headers with one byte of the body
changed, and with a secret nobody was given, must be refused by both verifiers.

Input (a file path argument, or stdin when the argument is `-` or absent), JSON:

  {"deliveries": [{"name": "...", "headers": {"X-Nexus-Signature-256": "...", ...},
                   "body_base64": "<the raw body, base64>",
                   "nexus_secret": "whsec_...", "standard_secrets": ["whsec_...", ...]}]}

Prints one line per check and a summary; exits 1 if any check failed (or the input is
empty), 0 otherwise.

Usage: python scripts/outbound_oracle.py [captured.json | -]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# A valid Standard Webhooks secret that signed nothing here.
STRANGER_SECRET = "whsec_" + base64.b64encode(b"nobody-was-given-this-secret-key").decode()


# --- From the brief ("Verify the signature in your application"), verbatim. ---
def verify_webhook(payload: str, timestamp: str, signature: str, secret: str) -> bool:
    """Verify Nexus webhook signature."""
    # Construct the signed message
    message = f"{timestamp}.{payload}"
    
    # Calculate expected signature
    expected = hmac.new(
        secret.encode(),
        message.encode(),
        hashlib.sha256
    ).hexdigest()
    
    # Remove 'sha256=' prefix if present
    if signature.startswith("sha256="):
        signature = signature[7:]
    
    # Use constant-time comparison
    return hmac.compare_digest(expected, signature)
# --- End of the brief's code. ---


def standard_accepts(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        parsed = Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    # The library returns the parsed payload: it must be the body that was sent.
    return parsed == json.loads(body)


def nexus_accepts(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    lower = {k.lower(): v for k, v in headers.items()}
    # As the brief's FastAPI handler does: the raw body decoded to text.
    return verify_webhook(
        body.decode(),
        lower.get("x-nexus-timestamp", ""),
        lower.get("x-nexus-signature-256", ""),
        secret,
    )


def tamper(body: bytes) -> bytes:
    """The body with one byte changed (a digit, or the last byte)."""
    data = bytearray(body)
    for i, byte in enumerate(data):
        if chr(byte).isdigit():
            data[i] = ord("0") if byte != ord("0") else ord("1")
            return bytes(data)
    data[-1] ^= 0x01
    return bytes(data)


def check_delivery(delivery: dict) -> list[tuple[str, bool]]:
    name = delivery["name"]
    headers = delivery["headers"]
    body = base64.b64decode(delivery["body_base64"])
    nexus_secret = delivery["nexus_secret"]
    standard_secrets = delivery["standard_secrets"]
    if not standard_secrets:
        return [(f"{name}: lists at least one Standard Webhooks secret", False)]
    checks = [
        (
            f"{name}: verify_webhook accepts X-Nexus-Signature-256",
            nexus_accepts(nexus_secret, body, headers),
        ),
        (
            f"{name}: verify_webhook refuses a tampered body",
            not nexus_accepts(nexus_secret, tamper(body), headers),
        ),
        (
            f"{name}: verify_webhook refuses another secret",
            not nexus_accepts(STRANGER_SECRET, body, headers),
        ),
        (
            f"{name}: standardwebhooks refuses another secret",
            not standard_accepts(STRANGER_SECRET, body, headers),
        ),
    ]
    for n, secret in enumerate(standard_secrets, 1):
        checks.append(
            (
                f"{name}: standardwebhooks accepts webhook-signature with secret {n}",
                standard_accepts(secret, body, headers),
            )
        )
        checks.append(
            (
                f"{name}: standardwebhooks refuses a tampered body with secret {n}",
                not standard_accepts(secret, tamper(body), headers),
            )
        )
    return checks


def main() -> int:
    source = sys.argv[1] if len(sys.argv) > 1 else "-"
    if source == "-":
        captured = json.load(sys.stdin)
    else:
        with open(source, encoding="utf-8") as f:
            captured = json.load(f)
    deliveries = captured.get("deliveries", [])
    if not deliveries:
        print("FAIL: no deliveries to verify")
        return 1
    failed = 0
    total = 0
    for delivery in deliveries:
        for label, ok in check_delivery(delivery):
            total += 1
            failed += 0 if ok else 1
            print(f"{'ok  ' if ok else 'FAIL'} {label}")
    print(f"outbound oracle: {len(deliveries)} deliveries, {total - failed} of {total} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
