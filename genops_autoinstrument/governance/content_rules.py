"""Outgoing-prompt checks for personal data and secrets (``GENOPS_CONTENT_POLICY``).

Only the *kinds* found ever leave this module: the matched text is never returned, logged or
recorded. Every detector validates what it finds (Luhn and issuer ranges for cards, SSA rules and
a context word for SSNs, real phone layouts, structure and entropy for secrets; see
``content_numbers`` and ``content_secrets``) so that ordinary numbers in prompts do not trip a block.

Cost is bounded and linear: candidates are found by literal searches in translated copies of the
prompt (``content_text``). A prompt longer than :data:`MAX_SCAN_CHARS` is judged on its first
and last ``MAX_SCAN_CHARS / 2`` characters (the system prompt and tool descriptions come first,
the newest message last), and each detector family validates a bounded number of candidates
(:data:`~genops_autoinstrument.governance.content_text.CANDIDATES_PER_KIB`); either way
:attr:`Scan.complete` is False and the content policy marks the span.
"""

from __future__ import annotations

import re
from typing import Iterable, NamedTuple

from genops_autoinstrument.governance.content_numbers import Numbers, luhn_valid
from genops_autoinstrument.governance.content_secrets import has_secret
from genops_autoinstrument.governance.content_text import Text

__all__ = ["EMAIL", "PHONE", "PAYMENT_CARD", "US_SSN", "SECRET", "KINDS", "MAX_SCAN_CHARS", "Scan", "inspect", "luhn_valid", "scan"]

EMAIL = "email"
PHONE = "phone"
PAYMENT_CARD = "payment_card"
US_SSN = "us_ssn"
SECRET = "secret"
KINDS = (EMAIL, PHONE, PAYMENT_CARD, US_SSN, SECRET)

#: Characters of prompt text scanned per call, at most (see benchmarks/results/content_policy.md for the cost).
MAX_SCAN_CHARS = 1024 * 1024

# Each label is followed by a literal ".", so the engine backtracks a label in one step (linear time).
_EMAIL_DOMAIN = re.compile(rb"@[A-Za-z0-9-]{1,63}\.(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z]{2,24}\b")
_LOCAL_PART = re.compile(rb"[A-Za-z0-9._%+-]{1,65}\Z")
_SPACE = re.compile(rb"\s")
_BEFORE_LOCAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+-")


class Scan(NamedTuple):
    """What a scan found, and whether it read everything."""

    kinds: tuple[str, ...]  # in the order of KINDS; empty when clean
    scanned: int  # characters read
    total: int  # characters in the prompt
    complete: bool = True  # False: the prompt was cut (see MAX_SCAN_CHARS) or a detector hit its candidate budget


def scan(texts: Iterable[str]) -> tuple[str, ...]:
    """The kinds of sensitive content in ``texts``, in the order of :data:`KINDS` (empty when clean)."""
    return inspect(texts).kinds


def inspect(texts: Iterable[str], limit: int = MAX_SCAN_CHARS) -> Scan:
    """:func:`scan`, and how much was read: at most ``limit`` characters, the head and the tail of the prompt."""
    joined, total = _bounded([text for text in texts if isinstance(text, str) and text], limit)
    if not joined:
        return Scan((), 0, total)
    text = Text(joined.encode("utf-8", "surrogatepass"))
    found = set()
    complete = len(joined) >= total
    for detector in (_emails, _secrets, _numbers):
        text.budget = text.allowance  # each family its own: one cannot starve the others
        found.update(detector(text))
        complete = complete and not text.partial
    return Scan(tuple(kind for kind in KINDS if kind in found), min(len(joined), total), total, complete)


def _emails(text: Text) -> tuple[str, ...]:
    return (EMAIL,) if _has_email(text) else ()


def _secrets(text: Text) -> tuple[str, ...]:
    return (SECRET,) if has_secret(text) else ()


def _numbers(text: Text) -> tuple[str, ...]:
    card, ssn, phone = Numbers(text).run()
    return tuple(kind for kind, hit in ((PAYMENT_CARD, card), (US_SSN, ssn), (PHONE, phone)) if hit)


def _bounded(texts: list[str], limit: int) -> tuple[str, int]:
    """The texts joined by newlines, or their first and last ``limit / 2`` characters; and the full length."""
    total = sum(len(text) for text in texts) + max(0, len(texts) - 1)
    if total <= limit:
        return "\n".join(texts), total
    head: list[str] = []
    budget = limit // 2
    for text in texts:
        if budget <= 0:
            break
        head.append(text[:budget])
        budget -= len(text) + 1
    tail: list[str] = []
    budget = limit // 2
    for text in reversed(texts):
        if budget <= 0:
            break
        tail.append(text[-budget:])
        budget -= len(text) + 1
    return "\n".join(head + tail[::-1]), total


def _has_email(text: Text) -> bool:
    raw = text.raw
    for match in _EMAIL_DOMAIN.finditer(raw):
        if not text.spend():
            return False
        at = match.start()
        if at == 0 or raw[at - 1] not in _BEFORE_LOCAL and raw[at - 1] != 37:  # no local part ("%" is 37)
            continue
        local = _LOCAL_PART.search(raw, max(0, at - 65), at)
        if local is None or at - local.start() > 64:
            continue
        start = local.start()
        if start > 0 and (raw[start - 1] in _BEFORE_LOCAL or _in_url(raw, start)):
            continue
        if raw[match.end() : match.end() + 1] == b":" and raw[match.end() + 1 : match.end() + 2] not in (b"", b" ", b"\n"):
            continue  # git@github.com:org/repo.git: an scp-style remote, not an address
        return True
    return False


def _in_url(raw: bytes, start: int) -> bool:
    """``scheme://user:password@host``: the userinfo of a URL (a secret, if anything), not an e-mail address."""
    scheme = raw.rfind(b"://", max(0, start - 256), start)
    return scheme >= 0 and _SPACE.search(raw, scheme, start) is None
