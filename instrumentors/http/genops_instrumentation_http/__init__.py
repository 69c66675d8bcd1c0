"""GenOps wire layer: model API calls recognised at the HTTP layer, for any client library.

Patches ``httpx``/``httpx2`` (``Client.send``, ``AsyncClient.send``) and ``requests``
(``Session.send``) and ``aiohttp`` (``ClientSession._request``), each when the application
imports it. A request that is not a model call pays
one test on its path. A model call that an SDK plugin already records is left to it (only the HTTP
attempt is counted on its span); any other is recorded once, governed before it is sent (a refused
call is answered with the provider's own 403/429, nothing leaves the process), and its response
read as the application reads it.

Must not import the HTTP libraries at module level: discovery imports this module without them.
"""

from __future__ import annotations

import logging
from typing import Any, Collection

from genops_autoinstrument.api import GenOpsInstrumentor

from ._aiohttp import AiohttpAdapter, request_wrapper
from ._apis import ENDPOINTS
from ._httpx import HttpxAdapter
from ._requests import RequestsAdapter
from ._wrappers import async_wrapper, sync_wrapper
from .package import _instruments, _watched_modules

__all__ = ["HTTPInstrumentor"]

_CLIENTS = ("httpx (sync, async)", "httpx2 (sync, async)", "requests", "aiohttp")


class HTTPInstrumentor(GenOpsInstrumentor):
    """Records model API calls made through HTTP client libraries that no SDK plugin records."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        """The installed ones among the clients it supports, inside their ranges (any one suffices;
        each is patched when the application imports it). A client installed outside its range is
        left unpatched (:meth:`patch`) instead of disabling the wire layer for the others."""
        return tuple(requirement for requirement in _instruments if _supported(requirement))

    def patch(self) -> None:
        for library in ("httpx", "httpx2"):
            adapter = HttpxAdapter(library)
            self.wrap(library, "Client.send", sync_wrapper(adapter))
            self.wrap(library, "AsyncClient.send", async_wrapper(adapter))
        self.wrap("requests.sessions", "Session.send", sync_wrapper(RequestsAdapter()))
        aiohttp = next(requirement for requirement in _instruments if requirement.startswith("aiohttp "))
        if _supported(aiohttp) is False:  # its adapter relies on private internals of the releases tested
            from importlib.metadata import version

            logging.getLogger("genops").warning("aiohttp %s is outside the wire layer's range %s: its calls are not instrumented", version("aiohttp"), aiohttp)
        else:
            self.wrap("aiohttp.client", "ClientSession._request", request_wrapper(AiohttpAdapter()))

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """What ``genops-run --check`` lists: the clients patched and the protocols recognised."""
        protocols: dict[str, list[str]] = {}
        for endpoint in ENDPOINTS:
            protocols.setdefault(endpoint.api.name, []).append(endpoint.suffix)
        return {"layer": "wire", "clients": list(_CLIENTS), "supported": list(_instruments), "protocols": protocols}


def _supported(requirement: str) -> bool | None:
    """True: installed inside ``requirement``'s range; False: installed outside it; None: not installed."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    parsed = Requirement(requirement)
    try:
        installed = version(parsed.name)
    except PackageNotFoundError:
        return None
    return parsed.specifier.contains(installed, prereleases=True)
