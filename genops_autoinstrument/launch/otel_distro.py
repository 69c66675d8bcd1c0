"""GenOps under ``opentelemetry-instrument``: a distro and a configurator.

``opentelemetry-instrument python app.py`` with GenOps installed loads these through the
``opentelemetry_distro`` and ``opentelemetry_configurator`` entry points: the distro validates the
GenOps configuration (exit status 2 on an invalid value, as ``genops-run`` does) and the
configurator sets up the SDK's global providers from the same ``OTEL_*`` variables, as
``opentelemetry-instrument``'s users expect (unless something set them already); GenOps records
into them. Under ``genops-run`` GenOps never sets the global providers. GenOps plugins are registered under ``opentelemetry_instrumentor``
too, so they are activated by ``opentelemetry-instrument``'s own loader.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator

#: Set when ``opentelemetry-instrument`` loaded GenOps (its distro or configurator ran): GenOps
#: plugins are then activated by OpenTelemetry's own loader and ``instrument()`` is a no-op.
loaded_by_opentelemetry = False


class GenOpsDistro(BaseDistro):  # type: ignore[misc]
    """Validates the GenOps environment before any instrumentor is loaded."""

    def _configure(self, **kwargs: Any) -> None:
        global loaded_by_opentelemetry
        from genops_autoinstrument.launch.bootstrap import validate_or_exit

        from genops_autoinstrument.launch.discovery import OTEL_GROUP, PLUGIN_GROUP, scan

        validate_or_exit([info.to_tuple() for info in scan([PLUGIN_GROUP, OTEL_GROUP])])
        loaded_by_opentelemetry = True
        _trust_baggage_from_the_first_request()


def _trust_baggage_from_the_first_request() -> None:
    """Trusted baggage keys take the first of duplicate entries from the first request on, as
    under ``genops-run`` (the propagator is wrapped when its module is imported)."""
    import os

    if not os.environ.get("GENOPS_BAGGAGE_KEYS", "").strip():
        return
    from genops_autoinstrument.launch.finder import get_finder
    from genops_autoinstrument.launch.server_hooks import hook_baggage_propagator

    finder = get_finder()
    finder.install()
    finder.watch("opentelemetry.baggage.propagation", hook_baggage_propagator)


class GenOpsConfigurator(_BaseConfigurator):  # type: ignore[misc]
    """Sets up the global tracer and meter providers from ``OTEL_*``, with the exporters, resource
    and bounded exit flush ``genops-run`` gives GenOps' own providers."""

    def _configure(self, **kwargs: Any) -> None:
        global loaded_by_opentelemetry
        from genops_autoinstrument.engine import telemetry

        loaded_by_opentelemetry = True

        telemetry.configure_global()
