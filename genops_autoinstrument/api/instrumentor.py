"""The plugin-authoring kit: the base class every GenOps instrumentor subclasses.

A plugin is an OpenTelemetry ``BaseInstrumentor`` (so it also works under
``opentelemetry-instrument`` and in plain code) that declares what it patches and wraps methods
with :meth:`GenOpsInstrumentor.wrap`. The kit makes patching idempotent (never wrapped twice, even
across ``importlib.reload`` or two activations) and reversible (``uninstrument`` restores the
originals), and it skips targets a given SDK version does not have instead of failing.

Example::

    class AcmeInstrumentor(GenOpsInstrumentor):
        watched_modules = ("acme",)          # optional: defaults to the distributions' top-level modules

        def instrumentation_dependencies(self):
            return ("acme-sdk >= 2, < 4",)

        def patch(self):
            self.wrap("acme.client", "Client.complete", complete_wrapper)
"""

from __future__ import annotations

import importlib
import logging
import sys
from types import ModuleType
from typing import Any, Callable, Collection

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

log = logging.getLogger("genops")

_MARK = "_self_genops_plugin"


class GenOpsInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base class of GenOps plugins: declare ``watched_modules`` and implement :meth:`patch`."""

    #: Modules whose import activates the plugin. Empty means: the top-level modules of the
    #: distributions named in ``instrumentation_dependencies()``, read from installed metadata.
    #: Declare it for namespace packages and submodules (``google.genai``, ``botocore.client``).
    watched_modules: tuple[str, ...] = ()

    #: The plugin's own environment variables, declared with ``config.plugin_variable(...)``, so
    #: that ``genops-run`` validates them at start-up (exit status 2) and ``--check`` lists them.
    environment_variables: tuple[tuple[str, str, Any, str], ...] = ()

    _patches: list[tuple[Any, str, Any]]

    def instrumentation_dependencies(self) -> Collection[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def patch(self) -> None:
        """Wrap the target library's methods with :meth:`wrap`."""
        raise NotImplementedError

    # BaseInstrumentor hooks ------------------------------------------------------------------
    def _instrument(self, **kwargs: Any) -> None:
        if not hasattr(self, "_patches"):
            self._patches = []
        from genops_autoinstrument import config

        try:
            enabled = config.is_enabled()
        except config.ConfigError:
            enabled = True  # reported by the launcher; never silently drop governance
        if not enabled:  # GENOPS_ENABLED=false also holds under opentelemetry-instrument and in plain code
            log.info("%s: GENOPS_ENABLED=false, nothing patched", type(self).__name__)
            return
        self.patch()

    def _uninstrument(self, **kwargs: Any) -> None:
        for owner, name, wrapper in reversed(getattr(self, "_patches", [])):
            if owner.__dict__.get(name) is wrapper:
                setattr(owner, name, wrapper.__wrapped__)
        self._patches = []

    def reinstrument(self) -> None:
        """Patch again after the target module was re-executed (reload or fresh import)."""
        if self.is_instrumented_by_opentelemetry:
            self.uninstrument()
        self.instrument(skip_dep_check=True)

    # Patching helpers ------------------------------------------------------------------------
    def wrap(self, module: str | ModuleType, path: str, wrapper: Callable[..., Any]) -> bool:
        """Wrap ``module.path`` (``"Class.method"`` or ``"function"``) with a wrapt-style wrapper.

        Returns False, with a debug line, when this SDK version has no such attribute; never
        wraps what GenOps already wrapped.
        """
        import wrapt

        try:
            target = importlib.import_module(module) if isinstance(module, str) else module
            *parents, name = path.split(".")
            owner: Any = target
            for part in parents:
                owner = getattr(owner, part)
            original = owner.__dict__[name] if isinstance(owner, type) and name in owner.__dict__ else getattr(owner, name)
        except (ImportError, AttributeError, KeyError) as error:
            log.debug("%s: nothing to patch at %s.%s (%s)", type(self).__name__, getattr(module, "__name__", module), path, error)
            return False
        if getattr(original, _MARK, None) is not None:
            return False
        if isinstance(original, (staticmethod, classmethod)):
            log.debug("%s: %s is a %s; not patched", type(self).__name__, path, type(original).__name__)
            return False
        function_wrapper = wrapt.FunctionWrapper(original, wrapper)
        setattr(function_wrapper, _MARK, type(self).__name__)
        setattr(owner, name, function_wrapper)
        if not hasattr(self, "_patches"):
            self._patches = []
        self._patches.append((owner, name, function_wrapper))
        return True


def is_genops_wrapped(function: Any) -> bool:
    """True when ``function`` is a GenOps wrapper (tests and diagnostics)."""
    return getattr(function, _MARK, None) is not None


def loaded(module_name: str) -> ModuleType | None:
    """The module if it is already imported (plugins patch only what exists)."""
    return sys.modules.get(module_name)
