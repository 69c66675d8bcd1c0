"""The error responses GenOps answered refused calls with, so a refusal stays recognisable.

A wire-level plugin refuses a call by answering it with the provider's own HTTP error, which the
client turns into its own exception: nothing on that exception says GenOps refused it, except the
response object it carries. Registered here (weakly: nothing is kept alive), looked up by
:func:`genops_autoinstrument.policy_decision`.
"""

from __future__ import annotations

import weakref
from typing import Any

from genops_autoinstrument.governance.decisions import Decision

# id(response) -> (a weak reference to it, the decision). Keyed by identity, not by hash: the
# headers mapping some clients keep on their error (aiohttp) is weakly referenceable but unhashable.
_REFUSED: dict[int, tuple["weakref.ref[Any]", Decision]] = {}


def remember_refusal(response: Any, decision: Decision) -> None:
    """Note that ``response`` is GenOps' answer to a call ``decision`` refused."""
    key = id(response)
    try:
        reference = weakref.ref(response, lambda _: _REFUSED.pop(key, None))
    except TypeError:  # not weakly referenceable: it stays unrecognisable, nothing breaks
        return
    _REFUSED[key] = (reference, decision)


def refusal_of(response: Any) -> Decision | None:
    """The decision behind a response :func:`remember_refusal` registered, else None."""
    entry = _REFUSED.get(id(response))
    if entry is None or entry[0]() is not response:  # an id reused by another object
        return None
    return entry[1]


def refused_by(error: BaseException) -> Decision | None:
    """The blocking decision ``error`` itself carries, else the one behind the response it keeps:
    ``.decision`` (a blocked call's native error), ``.response`` (an SDK error built from the wire
    layer's answer) or ``.headers`` (aiohttp's ``ClientResponseError`` keeps only the headers).
    The one lookup ``policy_decision`` and ``is_refusal`` share; the error's chain is not walked."""
    decision = getattr(error, "decision", None)
    if isinstance(decision, Decision) and decision.blocks:
        return decision
    response = getattr(error, "response", None)
    if response is not None:
        return refusal_of(response)
    headers = getattr(error, "headers", None)
    return refusal_of(headers) if headers is not None else None
