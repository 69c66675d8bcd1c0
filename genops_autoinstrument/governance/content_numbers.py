"""Validated number detectors: payment cards, US social security numbers and phone numbers.

A number is reported only when its *layout*, its *digits* and, where the layout alone is
ambiguous, its *context* agree:

- cards: a known issuer prefix and length (Visa, Mastercard, Amex, Discover, Diners, JCB,
  UnionPay, Maestro, Mir), the Luhn check digit, and either no separators or one separator used
  consistently in a printed layout (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4). A Luhn-valid number next
  to an id word ("order", "invoice", "tracking"…) or in a list where most card-shaped numbers fail
  Luhn (order ids: about 1 in 10 passes by chance) is an id, unless a card word ("card", "visa",
  "cvv", "exp"…) is near it.
- SSNs: area 001-899 except 666, group not 00, serial not 0000, written ``ddd-dd-dddd``,
  ``ddd dd dddd`` or as nine digits, and an SSN word ("ssn", "social security"…) in the 200 bytes
  before or 24 after: part numbers such as ``463-19-1673`` have the same layout.
- phones: ``+`` and a country code with 8-15 digits, ``(415) 555-0123`` and ``415-555-0123`` with a
  valid North American area code and exchange, on their own; other layouts (``415.555.0123``,
  ``415 555 0123``, ``020 7946 0958``, ``4155550123``) only after a phone word ("phone", "tel",
  "call"…). Build numbers such as ``123.456.7890``, dates and IPv4 addresses are never phones.

Layouts are matched in :attr:`Text.shape` (``0`` digits, ``a`` letters) by patterns that start
with a literal, so the regex engine skips to candidates at C speed and checks the number's edges
itself: a number glued to a word (``INV-2024-0042``, ``v1.2.3``, ``A4111…``) or inside a longer
run of groups is no candidate. Python sees only numbers with a card, SSN or phone layout.
"""

from __future__ import annotations

import re

from genops_autoinstrument.governance.content_text import MIN_CANDIDATES, Text, words

_END = rb"(?![a0])(?![.-][a0])"  # not followed by a letter or digit, nor by ".5" / "-5"


def _start(prefix: bytes) -> bytes:
    """``prefix``, at the start of a number: not after a letter, digit or ``+``, nor after ``A-`` / ``1.``."""
    escaped = re.escape(prefix)
    return escaped + rb"(?<![a0+]" + escaped + rb")(?<![a0][.-]" + escaped + rb")"


# Each pattern starts with a literal; those of grouped layouts include the first separator, so that
# the engine does not try them at every position of a long run of digits (a list of ids).
_RUNS = re.compile(_start(b"000000000") + rb"0{0,10}" + _END)  # 9-19 digits in a row


def _card_groups(separator: bytes) -> "re.Pattern[bytes]":
    """A card printed in groups with one separator: 4-4-4-4, 4-4-4-4-3, 4-4-4-3, 4-4-4-1, 4-6-5, 4-6-4."""
    s = re.escape(separator)
    return re.compile(
        _start(b"0000" + separator) + rb"(?<!0 0000 )"
        + rb"(?:0000" + s + rb"0000" + s + rb"(?:0000(?:" + s + rb"000)?|000|0)|000000" + s + rb"0{4,5})"
        + _END + rb"(?!" + s + rb"0)"
    )


def _groups_3(separator: bytes) -> "re.Pattern[bytes]":
    """ddd-dd-dddd (an SSN layout) or ddd-ddd-dddd (a North American phone layout), maybe after "1-"."""
    s = re.escape(separator)
    head = b"000" + s
    return re.compile(
        head + rb"(?<![a0+]" + head + rb")(?<!a[.-]" + head + rb")(?<![a0.-]0[ .-]" + head + rb")"
        + rb"(?:00|000)" + s + rb"0000" + _END + rb"(?!" + s + rb"0)"
    )


_CARD_PATTERNS = (_RUNS, _card_groups(b" "), _card_groups(b"-"))
_NANP_PAREN = re.compile(_start(b"(000)") + rb" ?000[ .-]?0000" + _END)
_PLUS = re.compile(rb"\+0(?<![a0]\+0)(?:[ .()-]{0,2}0){6,14}" + _END)
# In raw: a national number with a trunk 0 in groups (one separator between groups: no ambiguity to backtrack over)
_TRUNK = re.compile(rb"0(?<![0-9A-Za-z+]0)(?<![0-9A-Za-z][.-]0)[0-9]{1,4}(?:[ .-][0-9]{2,8}){1,4}(?![0-9A-Za-z])")
_SHAPES = (
    (_NANP_PAREN, "paren", None),
    *((_groups_3(separator), "grouped", separator) for separator in (b"-", b" ", b".")),
    (_PLUS, "plus", None),
)
_SEPARATORS = b" -.()+"

CARD_WORDS = words(
    "card", "cards", "credit", "debit", "visa", "mastercard", "amex", "american express", "discover", "diners",
    "jcb", "unionpay", "maestro", "cc", "pan", "pay", "payment", "cvv", "cvc", "exp", "expiry", "expires", "billing", "cardholder",
)
ID_WORDS = words(
    "order", "orders", "invoice", "invoices", "inv", "tracking", "track", "shipment", "ref", "reference", "sku", "part", "p/n",
    "item", "ticket", "case", "id", "ids", "serial", "imei", "iccid", "account", "acct", "transaction", "txn", "po", "batch",
    "lot", "build", "version", "customer", "member", "isbn", "ean", "upc", "nr",
)
SSN_WORDS = words(
    "ssn", "ssns", "ss#", "ssn#", "social security", "social-security", "soc sec", "soc. sec.", "taxpayer id",
    literals=("ssn", "ss#", "social", "soc sec", "soc. sec", "taxpayer"),
)
PHONE_WORDS = words(
    "phone", "phones", "telephone", "tel", "mobile", "cell", "cellphone", "fax", "call", "calls", "contact", "reach", "dial",
    "whatsapp", "sms", "hotline", "landline", "ring",
    literals=("phone", "tel", "mobile", "cell", "fax", "call", "contact", "reach", "dial", "whatsapp", "sms", "hotline", "landline", "ring"),
)


_VALUES = bytes.maketrans(b"0123456789", bytes(range(10)))
_DOUBLED = bytes.maketrans(b"0123456789", bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))  # 2d, minus 9 above 9


def luhn_valid(digits: str | bytes) -> bool:
    """The payment-card check digit test (ASCII digits only)."""
    if isinstance(digits, str):
        digits = digits.encode()
    reverse = digits[::-1]
    return (sum(reverse[0::2].translate(_VALUES)) + sum(reverse[1::2].translate(_DOUBLED))) % 10 == 0


def _issuers() -> dict[bytes, frozenset[int]]:
    """Card lengths by the first two digits (prefixes that need four digits are checked further)."""
    table: dict[bytes, frozenset[int]] = {}
    for two in range(100):
        key = b"%02d" % two
        lengths: set[int] = set()
        if key[:1] == b"4":
            lengths |= {13, 16, 19}  # Visa
        elif 51 <= two <= 55 or 22 <= two <= 27:
            lengths |= {16, 17, 18, 19} if two == 22 else {16}  # Mastercard (2221-2720), Mir (2200-2204)
        elif two in (50, 56, 57, 58):
            lengths |= set(range(13, 20))  # Maestro
        elif two in (34, 37):
            lengths |= {15}  # American Express
        elif two in (30, 36, 38, 39):
            lengths |= set(range(14, 20))  # Diners Club
        elif two == 35:
            lengths |= set(range(16, 20))  # JCB (3528-3589)
        elif key[:1] == b"6":
            lengths |= set(range(16, 20))  # Discover, UnionPay, Maestro, RuPay
        if lengths:
            table[key] = frozenset(lengths)
    return table


_ISSUERS = _issuers()
_CHECKED_FURTHER = frozenset({b"22", b"27", b"30", b"35"})


def issuer_plausible(digits: bytes) -> bool:
    """Whether a card network issues numbers with this prefix and this length."""
    lengths = _ISSUERS.get(digits[:2])
    if lengths is None or len(digits) not in lengths:
        return False
    two = digits[:2]
    if two == b"22" or two == b"27":
        four = int(digits[:4])
        return 2221 <= four <= 2720 or (2200 <= four <= 2204 and len(digits) >= 16)
    if two == b"35":
        return 3528 <= int(digits[:4]) <= 3589
    if two == b"30":
        return digits[2:3] in b"012345" or digits[:4] == b"3095"
    return True


def ssn_valid(digits: bytes) -> bool:
    """Social Security Administration rules: never area 000, 666 or 900-999, group 00 or serial 0000."""
    area = digits[:3]
    return area != b"000" and area != b"666" and area[:1] != b"9" and digits[3:5] != b"00" and digits[5:] != b"0000"


def nanp_valid(national: bytes) -> bool:
    """North American numbering: area code NXX without N9X or N11, exchange NXX without N11."""
    return national[:1] in b"23456789" and national[1:2] != b"9" and national[1:3] != b"11" and national[3:4] in b"23456789" and national[4:6] != b"11"


class Numbers:
    """Finds cards, SSNs and phones in one :class:`Text`."""

    def __init__(self, text: Text) -> None:
        self.text = text
        self.card_shaped = 0
        self.card_valid: list[tuple[int, int]] = []
        self.ssn = False
        self.phone = False

    def run(self) -> tuple[bool, bool, bool]:
        """(payment card, SSN, phone) found; stops early when the candidate budget is spent."""
        text = self.text
        if not self._runs():
            return self._result()
        for pattern, layout, separator in _SHAPES:
            for match in pattern.finditer(text.shape):
                if not text.spend():
                    return self._result()
                self._grouped(match, layout, separator)
        if not self.phone:
            self.phone = self._national()
        return self._result()

    def _result(self) -> tuple[bool, bool, bool]:
        return self._cards_found(), self.ssn, self.phone

    def _runs(self) -> bool:
        """Card-shaped numbers, and 9-12 digits in a row (an SSN or a phone, with context); False when out of budget.

        The hot loop of number-dense text (lists of order ids): a few operations per number.
        """
        text = self.text
        spans = [match.span() for pattern in _CARD_PATTERNS for match in pattern.finditer(text.shape)]
        if len(spans) > text.budget:
            del spans[max(0, text.budget) :]
            text.budget = -1
        else:
            text.budget -= len(spans)
        raw, issuers, special, valid = text.raw, _ISSUERS, _CHECKED_FURTHER, self.card_valid
        shaped = 0
        for start, end in spans:
            digits = raw[start:end]
            length = end - start
            if not digits.isdigit():  # printed in groups
                digits = digits.translate(None, _SEPARATORS)
                length = len(digits)
            elif length < 13:
                self._short_run(digits, start, end)
                continue
            shaped += 1
            head = digits[:2]
            lengths = issuers.get(head)
            if lengths is None or length not in lengths or (head in special and not issuer_plausible(digits)):
                continue
            if luhn_valid(digits) and digits.count(digits[:1]) != length:
                valid.append((start, end))
        self.card_shaped += shaped
        return text.budget >= 0

    def _short_run(self, digits: bytes, start: int, end: int) -> None:
        text = self.text
        length = len(digits)
        if length == 9:
            self.ssn = self.ssn or (ssn_valid(digits) and text.near(SSN_WORDS, start, end, 200, 24))
        elif not self.phone and digits[:1] == b"0":  # a national number with a trunk 0: 07700900123
            self.phone = text.near(PHONE_WORDS, start, end, 64)
        elif length in (10, 11) and not self.phone:
            self.phone = (length == 10 or digits[:1] == b"1") and nanp_valid(digits[-10:]) and text.near(PHONE_WORDS, start, end, 64)

    def _grouped(self, match: "re.Match[bytes]", layout: str, separator: bytes | None) -> None:
        """An SSN or phone layout: ddd-dd-dddd, ddd-ddd-dddd, (ddd) ddd-dddd, +cc …"""
        text = self.text
        start, end = match.span()
        digits = text.raw[start:end].translate(None, _SEPARATORS)
        if layout == "grouped" and len(digits) == 9:
            if not self.ssn and separator != b".":
                self.ssn = ssn_valid(digits) and text.near(SSN_WORDS, start, end, 200, 24)
        elif not self.phone:
            self.phone = self._phone(match, layout, digits, separator)

    def _phone(self, match: "re.Match[bytes]", layout: str, digits: bytes, separator: bytes | None) -> bool:
        text = self.text
        start, end = match.span()
        if layout == "plus":
            separators = match.group().translate(None, b"+0")
            if not 8 <= len(digits) <= 15 or separators == b".":  # +35236450.6 is a signed decimal
                return False
            return b"." not in separators or max(len(group) for group in re.split(rb"[^0]+", match.group())) >= 3  # +1.2.3.4 is a version
        if layout == "grouped" and text.shape[start - 1 : start] == separator and text.raw[start - 2 : start - 1] != b"1":
            if separator != b" ":
                return False  # 5-415-555-0123: part of a longer number
        if not nanp_valid(digits):
            return False
        if layout == "paren":
            return True
        if separator != b"-" and not text.near(PHONE_WORDS, start, end, 64):
            return False  # 415.555.0123 and 415 555 0123 only after a phone word
        return not text.near(ID_WORDS, start, start, 16)  # part 415-555-0123, build 624.748.2968

    def _national(self) -> bool:
        """A national number with a trunk 0 in groups (020 7946 0958, 06 12 34 56 78): 9-12 digits, after a phone word."""
        text = self.text
        for match in _TRUNK.finditer(text.raw):
            if not text.spend():
                return False
            if 9 <= len(match.group().translate(None, _SEPARATORS)) <= 12 and text.near(PHONE_WORDS, match.start(), match.end(), 64):
                return True
        return False

    def _cards_found(self) -> bool:
        """Luhn-valid, plausible card numbers that are not ids (see the module docstring)."""
        text = self.text
        ids_list = self.card_shaped >= 3 and len(self.card_valid) * 2 < self.card_shaped
        if len(self.card_valid) > MIN_CANDIDATES:
            text.budget = -1  # context checked for the first ones only: the scan is partial
        for start, end in self.card_valid[:MIN_CANDIDATES]:
            if text.near(CARD_WORDS, start, end, 64, 32):
                return True
            if not ids_list and not text.near(ID_WORDS, start, end, 32):
                return True
        return False
