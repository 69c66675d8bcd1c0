"""Which of several ``genops.*`` baggage entries a request is attributed to: the first.

OpenTelemetry's W3C propagator keeps the *last* duplicate of a key when it extracts the
``baggage`` header, so a caller could append ``genops.customer_id=victim`` behind the value an
edge gateway prepended. The application must keep seeing baggage exactly as OpenTelemetry gives
it, so GenOps leaves that alone: :func:`wrap_propagator` makes the propagator's ``extract``
additionally read the raw header(s) itself (percent-decoded as the W3C spec says, properties after
``;`` ignored, bounded like the propagator) and store, under a context key of its own, the first
value of each attribution key next to the value OpenTelemetry extracted for it. Attribution
(:mod:`~genops_autoinstrument.engine.attribution`) uses the first value for as long as the
baggage still holds what the header gave; a value the application set in-process (trusted code)
wins.

Installed only when ``GENOPS_BAGGAGE_KEYS`` trusts some key: by the launcher's finder when
``opentelemetry.baggage.propagation`` is imported, or at engine set-up.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping
from urllib.parse import unquote

from opentelemetry.baggage import get_all
from opentelemetry.context import create_key, get_current, get_value, set_value

from genops_autoinstrument import semconv
from genops_autoinstrument.diagnostics import internal_error

# key -> (first value in the header(s) or None, the value OpenTelemetry extracted). Private to GenOps.
FIRST_ENTRIES = create_key("genops-first-baggage-entries")

_KEYS = frozenset(semconv.ATTRIBUTION_KEYS)
_HEADER = "baggage"
# The limits the propagator applies (W3C baggage: 8192 bytes, 180 list-members, 4096 per member).
_MAX_HEADER_LENGTH = 8192
_MAX_PAIR_LENGTH = 4096
_MAX_PAIRS = 180
_DELIMITER = re.compile(r"[ \t]*,[ \t]*")
_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")  # baggage-octet (still percent-encoded)


def first_entries(headers: Iterable[str], keys: frozenset[str] = _KEYS) -> dict[str, str]:
    """The first value of each of ``keys`` in ``baggage`` header values taken in order (several
    headers are one comma-separated list, as HTTP says). Keys are compared as sent (a key is a
    token, never percent-decoded); a malformed list-member is skipped."""
    found: dict[str, str] = {}
    members = 0
    length = 0
    for header in headers:
        if not isinstance(header, str) or len(header.encode()) > _MAX_HEADER_LENGTH:
            continue  # the propagator drops an oversized header whole
        for member in _DELIMITER.split(header.strip(" \t")):
            if not member:
                continue
            members += 1
            length += len(member) + (1 if members > 1 else 0)
            if members > _MAX_PAIRS or length > _MAX_HEADER_LENGTH:
                return found
            if len(member) > _MAX_PAIR_LENGTH or not member.isascii():
                continue
            key, equals, rest = member.partition("=")
            key = key.strip(" \t")
            if not equals or key not in keys or key in found:
                continue
            value = rest.split(";", 1)[0].strip(" \t")  # properties after ';' are not the value
            if _VALUE.fullmatch(value) is not None:
                found[key] = unquote(value, errors="replace")
            if len(found) == len(keys):
                return found
    return found


def remember_first(carrier: Any, getter: Any, before: Any, extracted: Any) -> Any:
    """``extracted`` plus, under :data:`FIRST_ENTRIES`, the first value of each attribution key
    OpenTelemetry took from this carrier's header (``before`` is the context it extracted into)."""
    raw = getter.get(carrier, _HEADER)
    if not raw:
        return extracted
    first = first_entries([raw] if isinstance(raw, str) else raw)
    before_entries: Mapping[str, Any] = get_all(before)
    after_entries: Mapping[str, Any] = get_all(extracted)
    record: dict[str, tuple[str | None, Any]] | None = None
    for key in _KEYS:
        value = after_entries.get(key)
        if value is None or value is before_entries.get(key):
            continue  # not taken from this header: any earlier record stays valid
        if record is None:
            record = dict(get_value(FIRST_ENTRIES, extracted) or {})
        # None when OpenTelemetry took it from a key GenOps does not read as this one
        # (``genops%2Ecustomer_id``, ``genops.customer_id+``): never attribute from those.
        record[key] = (first.get(key), value)
    return extracted if record is None else set_value(FIRST_ENTRIES, record, extracted)


def wrap_propagator(module: Any) -> None:
    """Make ``W3CBaggagePropagator.extract`` of ``module`` remember the first entries (once)."""
    import wrapt

    propagator = getattr(module, "W3CBaggagePropagator", None)
    extract = getattr(propagator, "extract", None) if propagator is not None else None
    if extract is None or getattr(extract, "_self_genops_first", False):
        return

    def remembering(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        context = args[1] if len(args) > 1 else kwargs.get("context")
        before = context if context is not None else get_current()
        result = wrapped(*args, **kwargs)
        try:
            carrier = args[0] if args else kwargs["carrier"]
            getter = args[2] if len(args) > 2 else kwargs.get("getter")
            if getter is None:
                from opentelemetry.propagators.textmap import default_getter as getter
            return remember_first(carrier, getter, before, result)
        except Exception as error:  # the application gets OpenTelemetry's context, whatever happens here
            internal_error("baggage extraction", error)
            return result

    wrapper = wrapt.FunctionWrapper(extract, remembering)
    wrapper._self_genops_first = True
    propagator.extract = wrapper


def install() -> None:
    """Wrap the propagator now (engine set-up with trusted keys: it may have been imported before
    the launcher's hook, or outside ``genops-run``)."""
    from opentelemetry.baggage import propagation

    wrap_propagator(propagation)
