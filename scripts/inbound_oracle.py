#!/usr/bin/env python3
"""Check inbound signature verification against the providers' own SDKs.

Each provider's published library signs a request, this script POSTs it to a running
gateway, and the gateway must store it (200); the same request with a tampered body must
be refused (401, error code `unauthorized`). Before sending, the SDK's own verifier judges
every request too, so a case only counts if the provider's code agrees with what it is
meant to show (signed: valid, tampered: invalid).

  Standard Webhooks  standardwebhooks  Webhook.sign / Webhook.verify
  Slack              slack_sdk         SignatureVerifier.generate_signature / is_valid
  Twilio             twilio            RequestValidator.compute_signature / validate
  Stripe             stripe            WebhookSignature.generate_signature_header /
                                       Webhook.construct_event

Every scheme posts to its own agent, `{prefix}_{scheme}`, configured (by the caller) under
`WEBHOOK_SECRET_{prefix}_{scheme}` with the matching verifier config; the secrets are the
fixed test values below (tests/api/oracle.rs holds the same ones). Twilio signs the full
URL, so --base must be the URL the gateway sees (`http://127.0.0.1:PORT`).

Prints one line per check and exits 1 if any check fails. With --accepted PATH it also
writes the requests the gateway accepted, as JSON, for the caller to compare with what
was stored: [{"agent", "source", "id", "content_type", "body"}].

Usage: python scripts/inbound_oracle.py --base http://127.0.0.1:PORT --agent-prefix X
           [--accepted PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import parse_qsl, urlencode

import stripe
from slack_sdk.signature import SignatureVerifier
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from twilio.request_validator import RequestValidator

# Fixed test secrets; tests/api/oracle.rs configures the gateway with the same values.
# Standard Webhooks: a rotation, the old key first; requests are signed with the new one
# (the example secret from the Standard Webhooks specification).
SW_OLD_SECRET = "whsec_bmV4dXMtb3JhY2xlLXJldGlyZWQta2V5"
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Slack's documented example signing secret.
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TWILIO_AUTH_TOKEN = "nexus-oracle-twilio-auth-token"
STRIPE_SECRET = "whsec_nexus_oracle_stripe_endpoint_secret"

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
TIMEOUT_SECONDS = 15


@dataclass
class Case:
    scheme: str
    name: str
    agent: str
    source: str
    # Everything after `?`, exactly as sent (Twilio signs it).
    query: str
    content_type: str
    body: bytes
    headers: dict[str, str]
    # What the case shows: a correctly signed request (True) or a tampered one (False).
    signed: bool
    # The provider SDK's own verdict on the request as sent.
    sdk_accepts: bool


def sdk_verdict(check: Callable[[], object], *errors: type[BaseException]) -> bool:
    """True if the SDK's verifier returns truthy without raising one of `errors`."""
    try:
        return check() is not False
    except errors:
        return False


def tamper(body: bytes, old: bytes, new: bytes) -> bytes:
    assert body.count(old) == 1, f"cannot tamper: {old!r} must occur once"
    return body.replace(old, new)


def standard_webhooks_cases(agent: str) -> list[Case]:
    hook = Webhook(SW_SECRET)
    body = b'{"type":"response.completed","data":{"id":"resp_oracle_1","status":"completed"}}'
    tampered = tamper(body, b'"completed"}', b'"cancelled"}')
    cases = []
    # The Svix SDK sends the same scheme under svix-* header names.
    for prefix, label in (("webhook", "webhook-* headers"), ("svix", "svix-* headers")):
        msg_id = f"msg_{uuid.uuid4().hex}"
        now = datetime.now(tz=timezone.utc)
        signature = hook.sign(msg_id, now, body.decode())
        standard = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        headers = {name.replace("webhook", prefix): v for name, v in standard.items()}
        for signed, sent in ((True, body), (False, tampered)):
            accepts = sdk_verdict(
                lambda: hook.verify(sent, standard, json_parse=False) or True,
                WebhookVerificationError,
            )
            name = f"{label}, {'signed' if signed else 'tampered body'}"
            cases.append(
                Case(
                    "standard-webhooks",
                    name,
                    agent,
                    "openai",
                    "source=openai",
                    JSON,
                    sent,
                    headers,
                    signed,
                    accepts,
                )
            )
    return cases


def slack_cases(agent: str) -> list[Case]:
    verifier = SignatureVerifier(SLACK_SECRET)
    command = urlencode(
        [
            ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
            ("team_id", "T0001"),
            ("channel_id", "C2147483705"),
            ("user_id", "U2147483697"),
            ("command", "/deploy"),
            ("text", "production now"),
            ("response_url", "https://hooks.slack.com/commands/1234/5678"),
        ]
    ).encode()
    event = (
        b'{"token":"XXYYZZ","team_id":"T0001","type":"event_callback",'
        b'"event":{"type":"app_mention","text":"<@U0LAN0Z89> deploy production"}}'
    )
    cases = []
    for label, content_type, body, old, new in (
        ("slash command form", FORM, command, b"production", b"staging"),
        ("events API JSON", JSON, event, b"production", b"staging"),
    ):
        timestamp = str(int(time.time()))
        signature = verifier.generate_signature(timestamp=timestamp, body=body)
        assert signature is not None
        headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
        for signed, sent in ((True, body), (False, tamper(body, old, new))):
            accepts = verifier.is_valid(body=sent, timestamp=timestamp, signature=signature)
            name = f"{label}, {'signed' if signed else 'tampered body'}"
            cases.append(
                Case(
                    "slack",
                    name,
                    agent,
                    "slack",
                    "source=slack",
                    content_type,
                    sent,
                    headers,
                    signed,
                    accepts,
                )
            )
    return cases


def twilio_cases(base: str, agent: str) -> list[Case]:
    validator = RequestValidator(TWILIO_AUTH_TOKEN)
    cases = []

    # An incoming SMS: the URL followed by every form parameter, as Twilio posts it.
    sms = urlencode(
        [
            ("ToCountry", "US"),
            ("SmsMessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("NumMedia", "0"),
            ("From", "+14155550100"),
            ("To", "+14155550199"),
            ("Body", "Hello from Twilio & friends: 100% ok?"),
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ]
    ).encode()
    query = "source=twilio"
    url = f"{base}/api/webhook/{agent}?{query}"
    signature = validator.compute_signature(url, dict(parse_qsl(sms.decode())))
    for signed, sent in ((True, sms), (False, tamper(sms, b"friends", b"enemies"))):
        params = dict(parse_qsl(sent.decode()))
        accepts = validator.validate(url, params, signature)
        name = f"SMS form, {'signed' if signed else 'tampered body'}"
        cases.append(
            Case(
                "twilio",
                name,
                agent,
                "twilio",
                query,
                FORM,
                sent,
                {"X-Twilio-Signature": signature},
                signed,
                accepts,
            )
        )

    # A JSON body: signed through its SHA-256 in the bodySHA256 query parameter.
    event = b'{"event_type":"com.twilio.messaging.inbound-message.received","data":{"body":"hi"}}'
    query = f"source=twilio&bodySHA256={validator.compute_hash(event.decode())}"
    url = f"{base}/api/webhook/{agent}?{query}"
    signature = validator.compute_signature(url, {})
    for signed, sent in ((True, event), (False, tamper(event, b'"hi"', b'"ho"'))):
        accepts = validator.validate(url, sent.decode(), signature)
        name = f"JSON with bodySHA256, {'signed' if signed else 'tampered body'}"
        cases.append(
            Case(
                "twilio",
                name,
                agent,
                "twilio",
                query,
                JSON,
                sent,
                {"X-Twilio-Signature": signature},
                signed,
                accepts,
            )
        )
    return cases


def stripe_cases(agent: str) -> list[Case]:
    body = (
        b'{"id":"evt_oracle_1","object":"event","type":"payment_intent.succeeded",'
        b'"data":{"object":{"id":"pi_oracle_1","object":"payment_intent","amount":2000}}}'
    )
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET)
    cases = []
    for signed, sent in ((True, body), (False, tamper(body, b"2000", b"9000"))):
        accepts = sdk_verdict(
            lambda: stripe.Webhook.construct_event(sent, header, STRIPE_SECRET),
            stripe.SignatureVerificationError,
        )
        name = f"payment_intent event, {'signed' if signed else 'tampered body'}"
        cases.append(
            Case(
                "stripe",
                name,
                agent,
                "stripe",
                "source=stripe",
                JSON,
                sent,
                {"Stripe-Signature": header},
                signed,
                accepts,
            )
        )
    return cases


def post(opener: urllib.request.OpenerDirector, base: str, case: Case) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base}/api/webhook/{case.agent}?{case.query}",
        data=case.body,
        method="POST",
        headers={"Content-Type": case.content_type, **case.headers},
    )
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, {"unparsed": text.decode(errors="replace")}


def run(base: str, prefix: str) -> tuple[bool, list[dict]]:
    cases = (
        standard_webhooks_cases(f"{prefix}_sw")
        + slack_cases(f"{prefix}_slack")
        + twilio_cases(base, f"{prefix}_twilio")
        + stripe_cases(f"{prefix}_stripe")
    )
    # A direct opener: an HTTP(S)_PROXY in the environment must not capture loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    all_ok = True
    accepted = []
    for case in cases:
        label = f"{case.scheme:<17} {case.name:<40}"
        if case.sdk_accepts != case.signed:
            all_ok = False
            verdict = "accepts" if case.sdk_accepts else "refuses"
            print(f"FAIL {label} the SDK's own verifier {verdict} it", flush=True)
            continue
        status, reply = post(opener, base, case)
        if case.signed:
            ok = status == 200 and isinstance(reply.get("id"), str)
            want = "200"
        else:
            error = reply.get("error")
            ok = status == 401 and isinstance(error, dict) and error.get("code") == "unauthorized"
            want = "401 unauthorized"
        all_ok &= ok
        if ok:
            print(f"ok   {label} {status}", flush=True)
        else:
            print(f"FAIL {label} want {want}, got {status}: {json.dumps(reply)}", flush=True)
        if status == 200:
            accepted.append(
                {
                    "agent": case.agent,
                    "source": case.source,
                    "id": reply.get("id"),
                    "content_type": case.content_type,
                    "body": case.body.decode(),
                }
            )
    return all_ok, accepted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="gateway URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--agent-prefix", required=True, help="agents are PREFIX_{scheme}")
    parser.add_argument("--accepted", help="write the accepted requests here, as JSON")
    args = parser.parse_args()
    all_ok, accepted = run(args.base.rstrip("/"), args.agent_prefix)
    if args.accepted:
        with open(args.accepted, "w", encoding="utf-8") as out:
            json.dump(accepted, out)
    print("all checks passed" if all_ok else "some checks FAILED", flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
