"""Content policy (issue 14, item 12): validated detectors, every text field, a bounded cost per call.

Every case goes through the real ``ContentPolicy`` in a real ``EnforcingGovernor`` and a real
engine (in-memory OpenTelemetry exporters), as ``GENOPS_CONTENT_POLICY=block`` would run it; the
OpenAI case goes through the real SDK and plugin, its requests answered by a local transport.
On the old detector the false-positive cases were blocked (build numbers as phones, part numbers
as SSNs, order-id lists as cards) and the secret cases went through.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import string
from typing import Any, Iterator

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import content_policy
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.governance import content_rules
from genops_autoinstrument.governance.decisions import PolicyViolation
from genops_autoinstrument.pricing.usage import Usage

RNG = random.Random(14)
SCAN_STATUS = "genops.content.scan_status"


def _rand(alphabet: str, n: int) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def _luhn_complete(partial: str) -> str:
    total = sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d for i, d in enumerate(int(c) for c in reversed(partial)))
    return partial + str((10 - total % 10) % 10)


def _b64url(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


B62 = string.ascii_letters + string.digits


@pytest.fixture(autouse=True)
def _no_ambient_genops(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GENOPS_"):
            monkeypatch.delenv(name)


def call(*texts: str) -> PolicyViolation | None:
    """One recorded call whose request carries ``texts``; the violation if it was blocked."""
    request = CallRequest("openai", "chat", "gpt-4o-mini", max_output_tokens=16, prompt_text=lambda: list(texts))
    try:
        recorded = begin_call(request)
    except PolicyViolation as violation:
        return violation
    with recorded:
        pass
    recorded.finish(response_model="gpt-4o-mini", usage=Usage(input_tokens=10, output_tokens=2))
    return None


def verdict(*texts: str) -> tuple[str, ...]:
    """The kinds the policy blocked a call with ``texts`` for (empty: the call went ahead)."""
    with content_policy() as recorded:
        outcome = call(*texts)
        (span,) = recorded.spans()
    if outcome is None:
        assert span.attributes[semconv.GENOPS_POLICY_RESULT] == "ALLOWED"
        return ()
    assert outcome.reason_code == semconv.REASON_POLICY_DENY_CONTENT
    assert span.attributes[semconv.GENOPS_POLICY_REASON_CODE] == "POLICY_DENY_CONTENT"
    return tuple(outcome.decision.extra["kinds"])


# --- true positives, per detector ------------------------------------------------------------------------
CARDS = [
    "Customer card: 4111111111111111, exp 09/28",
    "charge my visa 4012 8888 8888 1881 for the renewal",
    "cc# 5555-5555-5555-4444",
    "Mastercard 2223 0031 2200 3222 on file",
    "Use 3782 822463 10005 for the refund.",  # Amex 4-6-5
    "Diners 3056 930902 5904",  # 4-6-4
    "JCB card 3530111333300000",
    "UnionPay 6200000000000005 please",
    '{"payment_method": "card", "number": "6011000990139424"}',
    "Visa (13 digits): 4222222222222",
    "Orders 4716938475618279, 7731002938475611, 1298374659102934; the card on file is 5105 1051 0510 5100.",
]
SSNS = [
    "SSN: 536-22-8147",
    "Her social security number is 536 22 8147.",
    "SSN 536228147",
    '{"name": "Dana Lee", "ssn": "078-05-1120"}',
    "SSNs on file:\n- 212-09-9999\n- 536-22-8147",
]
PHONES = [
    "Call me at (415) 555-0132 after 5pm.",
    "My number is 415-555-0187.",
    "Reach the site manager on +1 415 555 0123.",
    "The supplier's hotline is +44 20 7946 0958.",
    "Bureau: +33 1 23 45 67 89",
    "WhatsApp +14155550123",
    "call me at 415.555.0123",
    "mobile 4155550123",
    "Please phone her on 020 7946 0958 tomorrow.",
    "Contact: 1-800-555-0199",
]
EMAILS = ["Forward the contract to m.garcia+billing@example.co.uk before Friday.", "a@b.io"]
SECRETS = {
    "aws access key id": f"Use access key AKIA{_rand(string.ascii_uppercase + '234567', 16)} for the export job.",
    "aws documentation pair": "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "aws secret key, credentials file": "[prod]\naws_secret_access_key = " + _rand(B62 + "+/", 40),
    "aws secret key, environment": 'export AWS_SECRET_ACCESS_KEY="' + _rand(B62 + "+/", 40) + '"',
    "aws secret key, json": '{"AccessKeyId": "…", "SecretAccessKey": "' + _rand(B62 + "+/", 40) + '"}',
    "jwt hs256": "cookie: " + ".".join((_b64url({"alg": "HS256", "typ": "JWT"}), _b64url({"sub": "1234567890", "iat": 1763450000}), _rand(B62 + "-_", 43))),
    "jwt rs256 with kid": ".".join((_b64url({"alg": "RS256", "kid": "a1b2c3"}), _b64url({"scope": "orders:read"}), _rand(B62 + "-_", 342))),
    "pem rsa": "-----BEGIN RSA PRIVATE KEY-----\n" + _rand(B62 + "+/", 64),
    "pem pkcs8": "-----BEGIN PRIVATE KEY-----\n" + _rand(B62 + "+/", 64),
    "pem ec": "-----BEGIN EC PRIVATE KEY-----",
    "pem openssh": "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA",
    "pem encrypted": "-----BEGIN ENCRYPTED PRIVATE KEY-----",
    "pgp private key": "-----BEGIN PGP PRIVATE KEY BLOCK-----",
    "putty": "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none",
    "url password postgres": "DATABASE_URL=postgres://svc_app:" + _rand(B62, 12) + "@db.prod.internal:5432/orders",
    "url password redis, no user": "redis://:" + _rand(B62, 16) + "@cache.internal:6379/0",
    "url password mongodb+srv": "mongodb+srv://admin:" + _rand(B62, 14) + "@cluster0.ab1cd.mongodb.net/test",
    "url password https": "git remote add origin https://deploy:" + _rand(B62, 20) + "@git.example.com/org/repo.git",
    "openai project key": "OPENAI_API_KEY=sk-proj-" + _rand(B62 + "-_", 48),
    "openai legacy key": "key sk-" + _rand(B62, 48),
    "anthropic key": "sk-ant-api03-" + _rand(B62 + "-_", 93) + "AA",
    "github token": "ghp_" + _rand(B62, 36),
    "github fine-grained token": "github_pat_" + _rand(B62, 22) + "_" + _rand(B62, 59),
    "slack token": "xoxb-123456789012-1234567890123-" + _rand(B62, 24),
    "google api key": "AIza" + _rand(B62 + "-_", 35),
    "stripe live key": "sk_live_" + _rand(B62, 24),
    "gitlab token": "glpat-" + _rand(B62, 20),
    "npm token": "npm_" + _rand(B62, 36),
    "hugging face token": "hf_" + _rand(B62, 34),
    "sendgrid key": "SG." + _rand(B62, 22) + "." + _rand(B62, 43),
    "password in .env": "DB_PASSWORD=Granite2024!",
    "password in yaml": "db:\n  user: app\n  password: Velvet1999#",
    "api key in json (hex)": '"api_key": "' + _rand("0123456789abcdef", 32) + '"',
    "client secret": "client_secret = '" + _rand(B62, 32) + "'",
    "bearer token": "Authorization: Bearer " + _rand(B62, 40),
    "azure storage key": "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=" + _rand(B62 + "+/", 86) + "==;EndpointSuffix=core.windows.net",
}


@pytest.mark.parametrize("text", CARDS)
def test_payment_cards_are_blocked(text):
    assert verdict(text) == ("payment_card",)


@pytest.mark.parametrize("text", SSNS)
def test_ssns_with_their_context_are_blocked(text):
    assert verdict(text) == ("us_ssn",)


@pytest.mark.parametrize("text", PHONES)
def test_phone_numbers_in_phone_layouts_are_blocked(text):
    assert verdict(text) == ("phone",)


@pytest.mark.parametrize("text", EMAILS)
def test_email_addresses_are_blocked(text):
    assert verdict(text) == ("email",)


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_secrets_are_blocked(name):
    assert verdict(SECRETS[name]) == ("secret",)


# --- the false positives of the old detector, and other ordinary numbers ---------------------------------
def _order_id_list(rng: random.Random) -> str:
    ids = ["".join(rng.choice(string.digits) for _ in range(16)) for _ in range(rng.randint(5, 20))]
    return "Please check the status of these orders:\n- " + "\n- ".join(ids)


CLEAN = [
    "Deploy build 123.456.7890 to staging.",  # a phone before
    "The crash only happens on firmware 204.318.5521; its release notes mention the fix.",
    "Part 463-19-1673 is backordered; use 536-22-8147 as a substitute.",  # SSNs before
    "P/N 7731-22-0918 failed inspection, lot 4411.",
    "Invoice INV-2024-00042 for $12,480.00 is due on 2026-12-01; invoice 2024110345 was paid on 11/18/2026.",
    "UPS tracking 1Z999AA10123456784 and FedEx 7489 2234 1123 both show 'in transit'.",
    "USPS tracking 9400 1000 0000 0000 0000 00 was delivered to ZIP 94105-1234.",
    "Server 10.24.3.118 and 192.168.100.200 answer on port 8443; contact the NOC about 172.16.254.1.",
    "Upgrade from 4.12.7 to 5.0.0-rc.2 (python 3.11.7, build 2024.11.18.1234).",
    "Q3 revenue was $1,234,567.89 on 12 500 000 units; margin 23.4%.",
    "AWS account 123456789012 owns the bucket; ts=1731942000123 latency_ms=245.",
    "ISBN 978-3-16-148410-0, EAN 4006381333931, IMEI 356938035643809, ICCID 8944500102198304826.",
    "IBAN DE89 3704 0044 0532 0130 00, ABA routing 021000021.",
    "Commit 3f9a2c1e8b7d4f60a1b2c3d4e5f60718293a4b5c, request id 123e4567-e89b-12d3-a456-426614174000.",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  release.tar.gz",
    "Decimal('+35236450.6') and +1.2.3.4.5.6.7.8 are numbers, not phones.",
    "Vendor id 4929-1234-5678-9012 on the remittance advice.",
    "The Visa ending in 4242 expires 12/29; the call center took 18 342 calls.",
    "card-like but fails Luhn: 4111 1111 1111 1112",
    "years 2024 2025 2026 2027 2028 are not a card",
    "api_key = os.environ['OPENAI_API_KEY']; password: ${DB_PASSWORD}; token: <token>",
    "Example from the docs: postgres://user:password@localhost:5432/app",
    "api_key: YOUR_API_KEY_HERE and password: ********",
    "Authorization: Bearer <token>",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n-----END CERTIFICATE-----",
    "We use sk-learn-compatible-estimators-for-everyone in the pipeline.",
    "cache_key: user_profile_2024_v3; verify_pass: true; retry_token_ttl: 300",
    # A base64url header that decodes to JSON without "alg": not a JWT.
    ".".join((_b64url({"typ": "JWT", "kind": "example"}), _b64url({"sub": "x"}), "c2lnbmF0dXJlLWJ5dGVz")),
    "git clone git@github.com:acme/billing.git",
    "Use AbstractSingletonProxyFactoryBean and ConcurrentLinkedDequeSpliterator.",
]


@pytest.mark.parametrize("text", CLEAN)
def test_ordinary_business_text_goes_through(text):
    assert verdict(text) == ()


def test_lists_of_order_ids_are_not_cards():
    """About 1 in 10 random ids passes Luhn: the old rule blocked most such lists (85% in the issue)."""
    rng = random.Random(12)
    lists = [_order_id_list(rng) for _ in range(40)]
    with content_policy() as recorded:
        outcomes = [call(text) for text in lists]
        spans = recorded.spans()
    assert outcomes == [None] * 40
    assert {span.attributes[semconv.GENOPS_POLICY_RESULT] for span in spans} == {"ALLOWED"}


def test_an_order_id_glued_to_letters_or_next_to_an_id_word_is_no_card():
    assert verdict("order 4111111111111111 shipped; ref-4012888888881881; X5555555555554444") == ()


# --- every text of the request -----------------------------------------------------------------------------
def test_every_text_the_request_carries_is_checked():
    """System prompt, earlier turns, tool results: prompt_text yields each; a secret in any one blocks."""
    texts = ["You are a billing assistant.", "What is the refund policy?", "It is 30 days.", "Tool result: " + SECRETS["github token"]]
    assert verdict(*texts) == ("secret",)
    assert verdict(*texts[:3]) == ()


def test_the_block_names_kinds_and_never_the_text(caplog):
    secret = SECRETS["aws secret key, credentials file"].rsplit(" ", 1)[1]
    with caplog.at_level(logging.DEBUG, logger="genops"), content_policy() as recorded:
        blocked = call("deploy with " + SECRETS["aws secret key, credentials file"], "and mail ops@example.com")
        (span,) = recorded.spans()
    assert isinstance(blocked, PolicyViolation)
    assert str(blocked) == "GenOps content policy: the prompt contains email, secret"
    everything = repr(dict(span.attributes)) + repr([dict(e.attributes) for e in span.events]) + caplog.text + str(blocked)
    for fragment in (secret, secret[:12], "ops@example.com"):
        assert fragment not in everything


def test_warn_mode_lets_the_call_run():
    with content_policy(GENOPS_CONTENT_POLICY="warn") as recorded:
        assert call(SECRETS["jwt hs256"]) is None
        (span,) = recorded.spans()
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == "WARNING"
    assert span.attributes[semconv.GENOPS_POLICY_REASON_CODE] == "POLICY_DENY_CONTENT"


# --- bounded cost ------------------------------------------------------------------------------------------
FILLER = "The quarterly report shows revenue growth across regions; order 48213377 shipped on 2026-03-04.\n"


def _long_prompt(characters: int) -> str:
    return (FILLER * (characters // len(FILLER) + 1))[:characters]


def test_a_prompt_past_the_cap_is_judged_on_its_head_and_tail_and_says_so(caplog):
    cap = content_rules.MAX_SCAN_CHARS
    body = _long_prompt(3 * cap)
    key = SECRETS["stripe live key"]
    with caplog.at_level(logging.WARNING, logger="genops"), content_policy(GENOPS_CONTENT_POLICY="warn") as recorded:
        assert call("system prompt", body, "and the newest message: " + key) is None  # the tail is read
        assert call(body[: len(body) // 2] + " " + key + " " + body[len(body) // 2 :]) is None  # the middle is not
        assert call("short prompt " + key) is None
        tail, middle, short = recorded.spans()
    assert tail.attributes[semconv.GENOPS_POLICY_RESULT] == "WARNING"
    assert tail.attributes[SCAN_STATUS] == "partial"
    assert middle.attributes[semconv.GENOPS_POLICY_RESULT] == "ALLOWED"
    assert middle.attributes[SCAN_STATUS] == "partial"
    assert short.attributes[semconv.GENOPS_POLICY_RESULT] == "WARNING"
    assert SCAN_STATUS not in short.attributes
    lines = [r.getMessage() for r in caplog.records if "scan_status=partial" in r.getMessage()]
    assert len(lines) == 1 and f"{3 * cap + len('system prompt') + 26 + len(key):,} characters" in lines[0]


def test_a_prompt_that_is_all_candidates_is_checked_up_to_a_budget_and_says_so():
    """Every position a candidate for some detector: each family stops at its budget (linear, bounded)."""
    adversarial = "SSN 000-12-3456 " * 20_000 + "+1234567 " * 20_000 + "@example.com " * 20_000
    result = content_rules.inspect([adversarial])
    assert result.kinds == () and not result.complete and result.scanned == result.total
    with content_policy() as recorded:
        assert call(adversarial) is None
        (span,) = recorded.spans()
    assert span.attributes[SCAN_STATUS] == "partial"


def test_a_long_business_prompt_with_lists_of_ids_is_read_whole():
    """About 1 MB of reports, each with a list of order ids, dates and amounts: under the budget, nothing partial."""
    rng = random.Random(5)
    prompt = "\n\n".join(FILLER * 5 + _order_id_list(rng) for _ in range(1_500))[: content_rules.MAX_SCAN_CHARS]
    result = content_rules.inspect([prompt])
    assert result.complete and result.kinds == ()


# --- through the OpenAI SDK and plugin ----------------------------------------------------------------------
@pytest.fixture
def openai_client() -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    httpx = pytest.importorskip("httpx")
    openai = pytest.importorskip("openai")
    from genops_instrumentation_openai import OpenAIInstrumentor

    sent: list[dict[str, Any]] = []

    def handler(request: Any) -> Any:
        body = json.loads(request.content)
        sent.append(body)
        choice = {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        usage = {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}
        return httpx.Response(200, json={"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"], "choices": [choice], "usage": usage})

    client = openai.OpenAI(api_key="sk-test-not-a-key", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument()
    try:
        yield client, sent
    finally:
        instrumentor.uninstrument()


def test_openai_chat_with_a_secret_is_refused_before_it_is_sent(openai_client):
    import openai

    client, sent = openai_client
    with content_policy():
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Deploy build 123.456.7890, part 463-19-1673"}])
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": SECRETS["jwt hs256"]}])
    assert len(sent) == 1 and "123.456.7890" in sent[0]["messages"][0]["content"]


def test_openai_tool_call_arguments_are_checked(openai_client):
    """A secret only in an assistant tool call's arguments (a JSON string, read as given) blocks the call."""
    import openai

    client, sent = openai_client

    def messages(connection: str) -> list[dict[str, Any]]:
        arguments = json.dumps({"connection": connection})
        return [
            {"role": "user", "content": "Check the database."},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "connect", "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "connected"},
        ]

    with content_policy():
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages(SECRETS["url password postgres"]))
        assert sent == []
        client.chat.completions.create(model="gpt-4o-mini", messages=messages("db.prod.internal:5432/orders"))
    assert len(sent) == 1 and sent[0]["messages"] == messages("db.prod.internal:5432/orders")


def test_the_context_word_shortcut_covers_every_word():
    """After 16 context checks a prompt is searched once for the words' literals; a word no literal covers would be missed."""
    from genops_autoinstrument.governance import content_numbers

    for family in (content_numbers.SSN_WORDS, content_numbers.PHONE_WORDS):
        alternatives = family.pattern.pattern[3:].split(b")(?!")[0].replace(b"\\", b"").split(b"|")
        assert alternatives and all(any(literal in word for literal in family.literals) for word in alternatives), family
    many_builds = " ".join(f"build 2{n:02d}.555.01{n:02d}" for n in range(40))  # 40 context checks, no phone word
    assert verdict(many_builds) == ()
    assert verdict(many_builds + "\nlandline 415.555.0123") == ("phone",)


@pytest.mark.parametrize(
    ("arguments", "kind"),
    [
        (r'{"note": "line one\n4012 8888 8888 1881"}', "payment_card"),
        (r'{"text": "call\n415-555-0187"}', "phone"),
        (r'{"text": "x\nSSN 536-22-8147"}', "us_ssn"),
    ],
)
def test_json_escapes_in_tool_call_arguments_do_not_hide_findings(arguments, kind):
    # Tool-call arguments are JSON text: "\n" there is two characters, backslash and n, and the n
    # must not glue itself to the number that follows.
    assert kind in content_rules.scan([arguments])
