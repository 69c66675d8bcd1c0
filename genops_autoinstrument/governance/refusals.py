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

_REFUSED_RESPONSES: "weakref.WeakKeyDictionary[Any, Decision]" = weakref.WeakKeyDictionary()


def remember_refusal(response: Any, decision: Decision) -> None:
    """Note that ``response`` is GenOps' answer to a call ``decision`` refused."""
    try:
        _REFUSED_RESPONSES[response] = decision
    except TypeError:  # not weakly referenceable: it stays unrecognisable, nothing breaks
        pass


def refusal_of(response: Any) -> Decision | None:
    """The decision behind a response :func:`remember_refusal` registered, else None."""
    try:
        return _REFUSED_RESPONSES.get(response)
    except TypeError:
        return None
