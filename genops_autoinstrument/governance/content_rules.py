"""Outgoing-prompt checks for personal data and secrets (``GENOPS_CONTENT_POLICY``).

Only the *kinds* found ever leave this module: the matched text is never returned, logged or
recorded. Patterns favour precision (separators required for phone numbers and SSNs, Luhn for
cards) so that ordinary numbers in prompts do not trip a block.
"""

from __future__ import annotations

import re
from typing import Iterable

EMAIL = "email"
PHONE = "phone"
PAYMENT_CARD = "payment_card"
US_SSN = "us_ssn"
SECRET = "secret"
KINDS = (EMAIL, PHONE, PAYMENT_CARD, US_SSN, SECRET)

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}"  # international: +44 20 7946 0958, +14155550123
    r"|(?:\(\d{3}\)\s?|\d{3}[.-])\d{3}[.-]\d{4}"  # North American: (415) 555-0123, 415-555-0123, 415.555.0123
    r")(?![\w-])"
)
_CARD = re.compile(
    r"(?<![\d-])(?:"
    r"\d{13,19}"  # contiguous
    r"|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?"  # 4-4-4-4(-3), as printed on most cards
    r"|\d{4}([ -])\d{6}\2\d{4,5}"  # 4-6-5 (American Express), 4-6-4 (Diners)
    r")(?![\d-])"
)
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_SECRET = re.compile(
    r"(?:"
    r"\bsk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|\b(?:sk|rk)_live_[0-9A-Za-z]{16,}"  # Stripe
    r"|\bglpat-[0-9A-Za-z_-]{20,}"  # GitLab
    r"|-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"
    r")"
)


def luhn_valid(digits: str) -> bool:
    """The payment-card check digit test."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _has_card(text: str) -> bool:
    for match in _CARD.finditer(text):
        digits = match.group(0).replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_valid(digits):
            return True
    return False


def scan(texts: Iterable[str]) -> tuple[str, ...]:
    """The kinds of sensitive content in ``texts``, in the order of :data:`KINDS` (empty when clean)."""
    found: set[str] = set()
    for text in texts:
        if not isinstance(text, str) or not text:
            continue
        if EMAIL not in found and "@" in text and _EMAIL.search(text):
            found.add(EMAIL)
        if SECRET not in found and _SECRET.search(text):
            found.add(SECRET)
        if any(ch.isdigit() for ch in text):
            if US_SSN not in found and _SSN.search(text):
                found.add(US_SSN)
            if PAYMENT_CARD not in found and _has_card(text):
                found.add(PAYMENT_CARD)
            if PHONE not in found and _PHONE.search(text):
                found.add(PHONE)
        if len(found) == len(KINDS):
            break
    return tuple(kind for kind in KINDS if kind in found)
