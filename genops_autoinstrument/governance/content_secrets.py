"""Secret detectors: provider key prefixes, AWS keys, JWTs, private keys, URL passwords, assigned secrets.

- Known prefixes (``sk-proj-``, ``sk-ant-``, ``ghp_``, ``github_pat_``, ``xoxb-``, ``AIza``, ``glpat-``,
  ``sk_live_``, ``npm_``, ``hf_``, ``AKIA``/``ASIA`` access key ids…) are specific enough on their own;
  only the bare ``sk-`` also needs a digit, a letter and some entropy (``sk-learn-compatible-estimators``
  is not a key).
- JWTs: three base64url parts whose header decodes to a JSON object with an ``alg``.
- PEM and PuTTY private keys: their ``-----BEGIN … PRIVATE KEY-----`` / ``PuTTY-User-Key-File`` line.
- ``scheme://user:password@host``, unless the password is a placeholder (``${DB_PASSWORD}``, ``<pass>``…).
- ``password = …``, ``api_key: …``, ``client_secret=…``, ``Authorization: Bearer …``: the value must look
  like a real secret, not a word (passwords: 8+ characters of 3 kinds; keys and tokens: mixed case and
  digits with some entropy, or 32+ hex digits; after ``aws_secret_access_key`` / ``SecretAccessKey``:
  any 40-character base64 value). An AWS secret key next to its access key id is caught by the id.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from genops_autoinstrument.governance.content_text import Text, char_classes, entropy

_LONG_TOKEN = re.compile(rb"a" * 20 + rb"a*")  # in Text.tokens: 20+ characters of [A-Za-z0-9_-]
_PREFIXED = re.compile(  # matched at the start of a run of token characters
    rb"(?:"
    rb"sk-(?:proj|ant|svcacct|admin)-[A-Za-z0-9_-]{20,}"  # OpenAI project keys, Anthropic
    rb"|(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])"  # AWS access key id
    rb"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    rb"|xox[abposr]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,}"  # Slack
    rb"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    rb"|(?:sk|rk)_live_[0-9A-Za-z]{16,}"  # Stripe
    rb"|glpat-[0-9A-Za-z_-]{20,}"  # GitLab
    rb"|npm_[A-Za-z0-9]{36}|hf_[A-Za-z0-9]{34}|shpat_[a-fA-F0-9]{32}|dop_v1_[a-f0-9]{64}|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"
    rb"|PuTTY-User-Key-File-[0-9]"  # PuTTY private key file
    rb"|(sk-)[A-Za-z0-9_-]{20,}"  # OpenAI and compatible services (bare): checked further
    rb")"
)
_DOTTED_PREFIXES = (b"SG.", b"ya29.")  # SendGrid, Google OAuth access token: the run starts after the dot
_JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{14,}={0,2}\.[A-Za-z0-9_-]{2,}={0,2}\.[A-Za-z0-9_-]*")
_PEM = re.compile(rb"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_URL_AUTH = re.compile(rb"://([^\s:/@?#\[\]]{0,128}):([^\s/@?]{1,256})@[A-Za-z0-9\[]")

_VALUE = rb"[a-z0-9_.-]{0,32}[\"']?[ \t]{0,4}(?:=|:|=>|:=)[ \t]{0,4}[\"'`]?([^\s\"'`,;<>(){}\[\]]{6,512})"
_ASSIGNMENTS = tuple(
    (re.compile(keyword + _VALUE), family)
    for keyword, family in ((rb"pass", "password"), (rb"pwd", "password"), (rb"secret", "key"), (rb"token", "key"), (rb"key", "key"))
)
_BEARER = re.compile(rb"bearer[ \t]+([a-z0-9._~+/-]{20,}=*)")
_BASE64_40 = re.compile(rb"[A-Za-z0-9/+]{40}")
_HEX = re.compile(rb"[0-9a-f-]{32,}")
_PLACEHOLDER_PARTS = re.compile(rb"xxx|\*\*\*|\.\.\.|your|changeme|placeholder|redacted|dummy|getenv|process\.env|os\.environ|\$\{|\{\{")
_PLACEHOLDERS = frozenset({b"password", b"passwd", b"pass", b"pwd", b"secret", b"token", b"none", b"null", b"undefined", b"env", b"example"})


def _placeholder(value: bytes) -> bool:
    """``${DB_PASSWORD}``, ``<password>``, ``your-api-key``, ``********``: a stand-in, not a secret."""
    low = value.lower()
    return value[:1] in b"$%*[{</" or low in _PLACEHOLDERS or len(set(low)) <= 2 or _PLACEHOLDER_PARTS.search(low) is not None


def _key_like(value: bytes, aws_secret: bool) -> bool:
    """A value that looks generated: mixed case and digits with some entropy, 32+ hex digits, or an AWS secret."""
    if aws_secret and _BASE64_40.fullmatch(value) and char_classes(value) >= 2:
        return True
    if _HEX.fullmatch(value.lower()):
        return char_classes(value.replace(b"-", b"")) >= 2
    return len(value) >= 16 and char_classes(value.translate(None, b"_-./+=")) >= 3 and entropy(value) >= 3.0


def _password_like(value: bytes) -> bool:
    return len(value) >= 8 and char_classes(value) >= 3


_PREFIX_STARTS = frozenset({b"sk", b"AK", b"AS", b"gh", b"gi", b"xo", b"xa", b"AI", b"rk", b"gl", b"np", b"hf", b"sh", b"do", b"py", b"ey", b"Pu"})


def _prefixed(text: Text, start: int) -> bool:
    """A known token prefix at the start of a run of token characters (or just before it, after a dot)."""
    raw = text.raw
    if raw[start - 1 : start] == b"." and raw.endswith(_DOTTED_PREFIXES, max(0, start - 5), start):
        return True
    if raw.startswith(b"eyJ", start):
        return _jwt(raw, start)
    match = _PREFIXED.match(raw, start)
    if match is None:
        return False
    if match[1] is None:
        return True
    body = match.group()[3:]
    return char_classes(body.translate(None, b"_-")) >= 2 and body.translate(None, b"0123456789") != body and entropy(body) >= 3.0


def _jwt(raw: bytes, start: int) -> bool:
    match = _JWT.match(raw, start)
    if match is None:
        return False
    header = match.group().split(b".", 1)[0].rstrip(b"=")
    if len(header) > 4096:
        return False
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + b"=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(decoded, dict) and isinstance(decoded.get("alg"), str)


def _url_password(text: Text) -> bool:
    for match in _URL_AUTH.finditer(text.raw):
        if not text.spend():
            return False
        if not _placeholder(match[2]):
            return True
    return False


def _assigned(text: Text) -> bool:
    raw, lower = text.raw, text.lower
    for pattern, family in _ASSIGNMENTS:
        for match in pattern.finditer(lower):
            if not text.spend():
                return False
            value = raw[match.start(1) : match.end(1)]
            if family == "password":
                if _password_like(value) and not _placeholder(value):
                    return True
            elif len(value) >= 16 and _key_like(value, aws_secret=b"secret" in match.group() and b"access" in match.group()) and not _placeholder(value):
                return True
    for match in _BEARER.finditer(lower):
        if not text.spend():
            return False
        value = raw[match.start(1) : match.end(1)]
        if not _placeholder(value) and (_key_like(value, False) or _jwt(raw, match.start(1))):
            return True
    return False


def has_secret(text: Text) -> bool:
    """Whether any secret detector fires on ``text`` (stops early when the candidate budget is spent)."""
    if _PEM.search(text.raw):
        return True
    starts = [run.start() for run in _LONG_TOKEN.finditer(text.tokens)]
    if len(starts) > text.budget:
        del starts[max(0, text.budget) :]
        text.budget = -1
        return False
    text.budget -= len(starts)
    raw, possible = text.raw, _PREFIX_STARTS
    for start in starts:  # a base64 blob has one run per 30 bytes or so: two slices each, at most
        if (raw[start : start + 2] in possible or raw[start - 1 : start] == b".") and _prefixed(text, start):
            return True
    return _url_password(text) or _assigned(text)
