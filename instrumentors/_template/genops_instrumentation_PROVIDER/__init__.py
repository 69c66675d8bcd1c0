"""GenOps plugin for the PROVIDER SDK: maps its requests and responses onto the engine's API.

Must not import the SDK at module level: discovery imports this module without the target.
"""

from __future__ import annotations

from typing import Any, Collection

from genops_autoinstrument import GenOpsInstrumentor
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.pricing.usage import Usage

from .package import _instruments, _watched_modules


def _create(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    request = CallRequest(provider="PROVIDER", operation="chat", request_model=kwargs.get("model"))
    call = begin_call(request)  # add block=... to raise the SDK's native error on a policy block
    with call:
        response = wrapped(*args, **kwargs)
    call.finish(
        response_model=getattr(response, "model", None),
        usage=Usage(input_tokens=None, output_tokens=None),
    )
    return response


class PROVIDERInstrumentor(GenOpsInstrumentor):
    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        self.wrap("provider_sdk.client", "Client.create", _create)
