"""Writes the labelled corpus of the content-policy benchmark (``*.jsonl`` next to this file).

    python benchmarks/content_corpus/generate.py

Deterministic (seeded): the committed files are its output. Every secret and every piece of
personal data in it is fake: card numbers are issuers' published test numbers or random digits
with a valid check digit, SSNs are random numbers that follow the SSA's layout rules, phone
numbers use the 555-01xx fiction range or random subscriber digits, keys and tokens are random
characters after the real prefixes (the AWS pair is AWS's own documentation example). See
README.md for the labelling rules.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from pathlib import Path

HERE = Path(__file__).resolve().parent
R = random.Random(20261118)
B62 = string.ascii_letters + string.digits
B64 = B62 + "+/"
B64URL = B62 + "-_"
HEX = "0123456789abcdef"


def rand(alphabet: str, n: int) -> str:
    return "".join(R.choice(alphabet) for _ in range(n))


def digits(n: int, first: str = "123456789") -> str:
    return R.choice(first) + rand(string.digits, n - 1)


# --- generators of fake data ----------------------------------------------------------------------------
def luhn_complete(partial: str) -> str:
    total = 0
    for position, char in enumerate(reversed(partial)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return partial + str((10 - total % 10) % 10)


def card(brand: str) -> str:
    prefix, length = {
        "visa": ("4", 16), "visa13": ("4", 13), "mc": (R.choice(["51", "52", "53", "54", "55"]), 16), "mc2": (str(R.randint(2221, 2720)), 16),
        "amex": (R.choice(["34", "37"]), 15), "discover": ("6011", 16), "jcb": (str(R.randint(3528, 3589)), 16), "diners": ("36", 14),
        "unionpay": ("62", 16),
    }[brand]
    return luhn_complete(prefix + rand(string.digits, length - len(prefix) - 1))


TEST_CARDS = ["4111111111111111", "4012888888881881", "5555555555554444", "5105105105105100", "378282246310005", "371449635398431",
              "6011111111111117", "6011000990139424", "3530111333300000", "3566002020360505", "30569309025904", "4222222222222",
              "2223003122003222", "6200000000000005", "4000056655665556", "5200828282828210"]


def grouped(number: str, separator: str) -> str:
    if len(number) == 15:
        return separator.join((number[:4], number[4:10], number[10:]))
    if len(number) == 14:
        return separator.join((number[:4], number[4:10], number[10:]))
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


def ssn() -> str:
    while True:
        area = R.randint(1, 899)
        if area != 666:
            return f"{area:03d}-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}"


def nanp() -> tuple[str, str, str]:
    area = f"{R.choice('23456789')}{R.choice('012345678')}{R.randint(0, 9)}"
    while area[1:] == "11":
        area = area[0] + "2" + area[2]
    return area, "555", f"01{R.randint(0, 99):02d}"


def id16() -> str:
    return digits(16)


def aws_key_id() -> str:
    return R.choice(["AKIA", "ASIA"]) + rand(string.ascii_uppercase + "234567", 16)


def aws_secret() -> str:
    return rand(B64, 40)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(alg: str = "HS256") -> str:
    header = {"alg": alg, "typ": "JWT"} if R.random() < 0.7 else {"alg": alg, "kid": rand(HEX, 16)}
    payload = {"sub": digits(8), "iat": 1763450000 + R.randint(0, 10**6), "exp": 1763460000 + R.randint(0, 10**6), "scope": "orders:read"}
    signature = rand(B64URL, 43 if alg.startswith("HS") else 342)
    return ".".join((b64url(json.dumps(header, separators=(",", ":")).encode()), b64url(json.dumps(payload, separators=(",", ":")).encode()), signature))


def pem(kind: str) -> str:
    body = "\n".join(rand(B64, 64) for _ in range(R.randint(3, 8)))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


def password() -> str:
    words = ["Summer", "Winter", "Falcon", "Orchid", "Granite", "Tango", "Velvet", "Copper"]
    return R.choice(words) + str(R.randint(10, 2029)) + R.choice("!#$%&*?@")


# --- records --------------------------------------------------------------------------------------------
records: dict[str, list[dict]] = {"business": [], "pii": [], "secrets": []}


def add(file: str, text: str, *kinds: str, note: str = "") -> None:
    record = {"id": f"{file}-{len(records[file]) + 1:03d}", "kinds": sorted(set(kinds)), "text": text}
    if note:
        record["note"] = note
    records[file].append(record)


def business() -> None:
    for _ in range(30):  # lists of order ids: 85% of these tripped the old card rule
        ids = [id16() if R.random() < 0.7 else digits(R.randint(13, 19)) for _ in range(R.randint(5, 20))]
        joiner = R.choice([", ", "\n- ", "\n", " | "])
        opener = R.choice(["Please check the status of these orders:", "Summarise the delivery issues for the following order IDs:",
                           "Which of these shipments are late?", "Reconcile the refunds listed below.", "Orders flagged by the fraud model today:"])
        add("business", opener + (joiner if joiner.startswith("\n") else " ") + joiner.join(ids), note="order ids")
    for _ in range(10):
        build = f"{R.randint(100, 999)}.{R.randint(100, 999)}.{R.randint(1000, 9999)}"
        add("business", R.choice([f"Deploy build {build} to staging and compare it with {R.randint(100, 999)}.{R.randint(100, 999)}.{R.randint(1000, 9999)}.",
                                  f"The crash only happens on firmware {build}; release notes for {build} mention the fix.",
                                  f"Artifact app-{build}.tar.gz failed the smoke tests ({R.randint(3, 40)} of 412 failed)."]), note="build numbers")
    for _ in range(10):
        part = ssn()
        add("business", R.choice([f"Part {part} is backordered until next month; use {ssn()} as a substitute.",
                                  f"Bill of materials: {part} (bracket), {ssn()} (hinge), qty {R.randint(2, 40)} each.",
                                  f"P/N {part} failed inspection, lot {R.randint(1000, 9999)}."]), note="part numbers in SSN layout")
    fixed = [
        "Invoice INV-2024-00042 for $12,480.00 is due on 2026-12-01; invoice 2024110345 was paid on 11/18/2026.",
        "The meeting moved from 11/18/2026 10:30 to 2026-11-19T14:00:00Z (room 4-1102).",
        "UPS tracking 1Z999AA10123456784 and FedEx 7489 2234 1123 both show 'in transit'.",
        "USPS tracking 9400 1000 0000 0000 0000 00 was delivered to the 94105-1234 ZIP code.",
        "DHL waybill JD014600003828406125 is stuck in customs at Leipzig.",
        "Server 10.24.3.118 and 192.168.100.200 answer on port 8443; the VIP is 172.16.254.1.",
        "IPv6 gateway 2001:db8:85a3::8a2e:370:7334 dropped 0.42% of packets.",
        "Upgrade from 4.12.7 to 5.0.0-rc.2 (python 3.11.7, node 20.11.1, build 2024.11.18.1234).",
        "Q3 revenue was $1,234,567.89 on 12 500 000 units; gross margin 23.4%, EBITDA 4.1M.",
        "AWS account 123456789012 owns the bucket; Salesforce account 0015g00000XyZabAAF owns the deal.",
        "ts=1731942000123 latency_ms=245 status=200 bytes=18233 trace=4bf92f3577b34da6a3ce929d0e0e4736",
        "ISBN 978-3-16-148410-0 and EAN 4006381333931 are on the packing list.",
        "The returned handset has IMEI 356938035643809; the SIM ICCID is 8944500102198304826.",
        "Commit 3f9a2c1e8b7d4f60a1b2c3d4e5f60718293a4b5c fixed the race; request id 123e4567-e89b-12d3-a456-426614174000.",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  release.tar.gz",
        "Read the key from the environment: api_key = os.environ['OPENAI_API_KEY'] and never hard-code it.",
        "In config.yaml set password: ${DB_PASSWORD} and token: ${API_TOKEN}.",
        "Example connection string from the docs: postgres://user:password@localhost:5432/app",
        "Send the header Authorization: Bearer <token> with every request.",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----",
        "We use sk-learn-compatible-estimators-for-everyone in the pipeline (scikit-learn 1.5.2).",
        "Warehouse at 37.7749, -122.4194; brand colours #1a2b3c and #ffcc00.",
        "IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX, ABA routing 021000021.",
        "The customer paid with the Visa ending in 4242; the card on file expires 12/29.",
        "card-like but fails Luhn: 4111 1111 1111 1112",
        "Ticket 2024-0042-7781: the cache key is user_profile_2024_v3 and the session token is short-lived.",
        "Call center volume was 18 342 calls in week 46; average handle time 6.4 minutes.",
        "Meter readings: 00012345, 00012988, 00013502; tariff code 41-22-07.",
        "The phone firmware build 123.456.7890 is out; support ends with build 204.318.5521.",
        "Password reset tokens expire after 15 minutes; the password policy requires 12 characters.",
        "Shipment 4500012345 (PO 4500012346) left the Hamburg warehouse, container MSKU 907032-3.",
        "Employee badge 88-1205-33 and desk 3.14.159 were reassigned on 2026-11-02.",
        "Set the key: ENABLE_BETA to true and the secret: rotation window to 30 days.",
        "The JWT header must contain alg and typ; tokens look like xxxxx.yyyyy.zzzzz.",
        "Latitude 48.858370, longitude 2.294481; elevation 35 m; 12/24 panels online.",
        "Lot numbers 20241118-001 through 20241118-250 passed QA; batch 7731-22-0918 failed.",
        "Our support line hours changed; the old extension 4521 is retired.",
        "Timestamp 1795000000 corresponds to 2026-11-18T11:06:40Z.",
        "Vendor id 4929-1234-5678-9012 appears on the remittance advice, reference 2026/11/0043.",
    ]
    for text in fixed:
        add("business", text)
    hard = [  # negatives a validated detector can still get wrong; kept to measure it honestly
        ("idempotency_key: 3f1c9a7e-2b4d-4e8f-9a6b-1c2d3e4f5a6b", "a UUID after a key word"),
        ("Clone it with git clone git@github.com:acme/billing.git and run make.", "an SSH remote, e-mail shaped"),
        ("Private keys start with the line -----BEGIN RSA PRIVATE KEY----- and must never be pasted here.", "a mention of the header, no key"),
        ("api_key: YOUR_API_KEY_HERE", "placeholder"),
        ("password: ********", "placeholder"),
        ("Set verify_pass: true and retry_token_ttl: 300 in the client.", "boolean and number values"),
        ("Attach the screenshot: data:image/png;base64," + rand(B64, 4000), "base64 image data"),
        ("Use AbstractSingletonProxyFactoryBean and ConcurrentLinkedDequeSpliterator from the SDK.", "long identifiers"),
        ("Tel. extension list: 4521, 4522, 4530; fax queue 12.", "phone words, short numbers"),
        ("Contact the NOC about 10.0.0.1:8080 and 192.168.1.254.", "phone word near IP addresses"),
    ]
    for text, note in hard:
        add("business", text, note=note)
    for _ in range(3):  # single ids that happen to be Luhn-valid and issuer-plausible: indistinguishable from a card
        add("business", f"Where is booking {card(R.choice(['visa', 'mc', 'discover']))}? The guest arrives tomorrow.", note="Luhn-valid booking reference")
    for _ in range(10):  # long paragraphs with many numbers
        parts = [f"Order {id16()} shipped on 2026-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}",
                 f"invoice INV-{R.randint(2020, 2026)}-{R.randint(1, 99999):05d} totals ${R.randint(100, 99999):,}.{R.randint(0, 99):02d}",
                 f"build {R.randint(1, 9)}.{R.randint(0, 30)}.{R.randint(0, 200)}", f"node 10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}",
                 f"part {ssn()}", f"{R.randint(2, 500)} units at {R.randint(1, 99)}.{R.randint(0, 99):02d} EUR", f"tracking 1Z{rand(string.ascii_uppercase + string.digits, 16)}",
                 f"ts {R.randint(1_700_000_000, 1_800_000_000)}"]
        R.shuffle(parts)
        add("business", "Weekly report: " + "; ".join(parts) + ".", note="dense numbers")


def pii() -> None:
    for index in range(24):
        number = TEST_CARDS[index % len(TEST_CARDS)] if index < len(TEST_CARDS) else card(R.choice(["visa", "mc", "mc2", "amex", "discover", "jcb", "diners", "unionpay", "visa13"]))
        shown = R.choice([number, grouped(number, " "), grouped(number, "-")]) if len(number) in (14, 15, 16) else number
        add("pii", R.choice([f"Customer card: {shown}, exp 09/28, please retry the charge.", f"charge my visa {shown} for the renewal",
                             f"cc# {shown}", f"Use {shown} for the refund.", f'{{"payment_method": "card", "number": "{shown}"}}',
                             f"My credit card number is {shown} and the CVV is {R.randint(100, 999)}.", f"Update the card on file to {shown}."]), "payment_card")
    add("pii", "Orders to check: " + ", ".join(id16() for _ in range(6)) + "; the card on file is 5555 5555 5555 4444.", "payment_card", note="a card among order ids")
    for _ in range(14):
        number = ssn()
        shown = R.choice([number, number.replace("-", " "), number.replace("-", "")])
        add("pii", R.choice([f"SSN: {shown}", f"Her social security number is {shown}.", f'{{"name": "Dana Lee", "ssn": "{shown}"}}',
                             f"Applicant: Sam Ortiz, DOB 1985-03-12, SSN {shown}, income $84,000.", f"SSNs on file: {shown}, {ssn()}"]), "us_ssn")
    for _ in range(3):
        add("pii", f"Employee record: Jordan Blake, DOB 03/12/1985, {ssn()}, hired 2019.", "us_ssn", note="no SSN word: missed by design")
    for _ in range(20):
        area, exchange, line = nanp()
        add("pii", R.choice([f"Call me at ({area}) {exchange}-{line} after 5pm.", f"My number is {area}-{exchange}-{line}.",
                             f"Reach the site manager on +1 {area} {exchange} {line}.", f"phone: {area}.{exchange}.{line}",
                             f"Contact: 1-{area}-{exchange}-{line}", f"mobile {area}{exchange}{line}"]), "phone")
    international = ["+44 20 7946 0958", "+33 1 23 45 67 89", "+49 30 901820", "+91 98765 43210", "+61 2 9876 5432", "+81 3-1234-5678", "+14155550123"]
    for number in international:
        add("pii", f"The supplier's hotline is {number}, ask for accounts.", "phone")
    add("pii", "Please phone her on 020 7946 0958 tomorrow.", "phone")
    add("pii", "tel. 06 12 34 56 78 (standard)", "phone", note="French national layout")
    add("pii", "Tel 0049 30 901820 (Berlin office)", "phone", note="00 international prefix")
    add("pii", "SSN format example: 123-45-6789", "us_ssn", note="the well-known example SSN")
    for _ in range(3):
        area, exchange, line = nanp()
        add("pii", f"Jamie {area}.{exchange}.{line} re the lease", "phone", note="dotted, no phone word: missed by design")
    names = ["jane.doe", "m.garcia+billing", "ops-team", "k_tanaka", "li.wei"]
    domains = ["example.com", "example.co.uk", "corp.example.org", "mail.example.net"]
    for name in names:
        add("pii", f"Forward the contract to {name}@{R.choice(domains)} before Friday.", "email")
    add("pii", "Contact jane.doe@example.com or (415) 555-0199 for access.", "email", "phone")
    add("pii", "Patient: A. Novak, SSN 536-22-8147, phone +1 415 555 0142, email a.novak@example.org", "us_ssn", "phone", "email")


def secrets() -> None:
    add("secrets", "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "secret", note="AWS documentation example pair")
    for _ in range(4):
        add("secrets", f"Use access key {aws_key_id()} for the nightly export job.", "secret")
    for template in ("aws_secret_access_key = {}", 'export AWS_SECRET_ACCESS_KEY="{}"', '{{"AccessKeyId": "ASIA…", "SecretAccessKey": "{}"}}', "secret_access_key: {}"):
        add("secrets", "Credentials for the migration: " + template.format(aws_secret()), "secret", note="AWS secret key without its key id")
    for alg in ("HS256", "RS256", "ES256", "HS512"):
        add("secrets", f"The failing request had the token {jwt(alg)} in its cookie.", "secret")
    add("secrets", f"Authorization: Bearer {jwt()}", "secret")
    for kind in ("RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK"):
        add("secrets", "Here is the deploy key, please check why ssh rejects it:\n" + pem(kind), "secret")
    add("secrets", "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPrivate-Lines: 1\n" + rand(B64, 44), "secret")
    urls = [f"postgres://svc_app:{rand(B62, 12)}@db.prod.internal:5432/orders", f"mysql://root:{rand(B62 + '!*~', 12)}@10.0.0.5:3306/app",
            f"redis://:{rand(B62, 16)}@cache.internal:6379/0", f"amqp://billing:{rand(B62, 10)}@mq.internal:5672/",
            f"mongodb+srv://admin:{rand(B62, 14)}@cluster0.ab1cd.mongodb.net/test", f"https://deploy:{rand(B62, 20)}@git.example.com/org/repo.git",
            "postgres://admin:admin@localhost:5432/postgres"]
    for url in urls:
        add("secrets", f"DATABASE_URL={url}" if R.random() < 0.5 else f"The job connects with {url} and times out.", "secret")
    tokens = [f"sk-proj-{rand(B64URL, 48)}", f"sk-ant-api03-{rand(B64URL, 93)}AA", f"sk-{rand(B62, 48)}", f"ghp_{rand(B62, 36)}",
              f"github_pat_{rand(B62, 22)}_{rand(B62, 59)}", f"xoxb-{digits(12)}-{digits(13)}-{rand(B62, 24)}", f"xoxp-{digits(12)}-{digits(12)}-{digits(13)}-{rand(HEX, 32)}",
              f"AIza{rand(B64URL, 35)}", f"sk_live_{rand(B62, 24)}", f"rk_live_{rand(B62, 24)}", f"glpat-{rand(B64URL, 20)}", f"npm_{rand(B62, 36)}",
              f"hf_{rand(B62, 34)}", f"SG.{rand(B64URL, 22)}.{rand(B64URL, 43)}", f"shpat_{rand(HEX, 32)}", f"dop_v1_{rand(HEX, 64)}"]
    for token in tokens:
        add("secrets", R.choice([f"OPENAI_API_KEY={token}", f"Why does this key fail? {token}", f'{{"token": "{token}"}}', f"export TOKEN='{token}'"]), "secret")
    assigned = [f"DB_PASSWORD={password()}", f"password: {password()}", f'"api_key": "{rand(HEX, 32)}"', f"client_secret = '{rand(B62, 32)}'",
                f"Authorization: Bearer {rand(B62, 40)}", f"STRIPE_WEBHOOK_SECRET={rand(B62, 32)}", f"db:\n  user: app\n  password: {password()}",
                f"The admin pwd={password()} works on staging only.", f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={rand(B64, 86)}==;EndpointSuffix=core.windows.net"]
    for text in assigned:
        add("secrets", text, "secret")
    add("secrets", f"Our internal token is {rand(B62, 40)}, keep it safe.", "secret", note="no prefix, no assignment: missed by design")
    add("secrets", "password: hunter2", "secret", note="a short weak password: missed by design (8+ characters of 3 kinds)")
    add("secrets", "password = 'correct horse battery staple'", "secret", note="a passphrase with spaces: missed by design")
    add("secrets", "jwt.io's example: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "secret")
    add("secrets", f"Reach me at ops@example.com; the API key is sk-proj-{rand(B64URL, 48)}", "secret", "email")


# Written into secrets.jsonl inside every long token and private-key header, and removed by the
# benchmark when it loads the corpus: repository secret scanners must not take the fakes for leaks.
JOINER = "\u2060"
_TOKENS = re.compile(r"[A-Za-z0-9_\-+/=.]{16,}|PRIVATE KEY")


def defang(text: str) -> str:
    return _TOKENS.sub(lambda token: token.group()[:3] + JOINER + token.group()[3:], text)


def main() -> None:
    business()
    pii()
    secrets()
    for name, rows in records.items():
        with open(HERE / f"{name}.jsonl", "w", encoding="utf-8") as out:
            for row in rows:
                if name == "secrets":
                    row = {**row, "text": defang(row["text"])}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{name}.jsonl: {len(rows)} records")


if __name__ == "__main__":
    main()
