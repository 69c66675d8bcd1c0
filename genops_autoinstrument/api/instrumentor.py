"""The plugin base class: an OpenTelemetry ``BaseInstrumentor`` whose targets patch as they load.

A plugin declares what it patches with :meth:`GenOpsInstrumentor.wrap` in :meth:`patch`. Each
target is patched when *its own* module has been imported by the application (at once if it
already is), through the one ``sys.meta_path`` finder; activating a plugin imports nothing, so an
application pays only for the SDK modules it imports itself. Patching is idempotent (never wrapped
twice, even across ``importlib.reload`` or two activations) and reversible (``uninstrument``
restores the originals and drops the pending hooks); a target a given SDK version does not have
is skipped.

Example::

    class AcmeInstrumentor(GenOpsInstrumentor):
        watched_modules = ("acme",)          # optional: defaults to the distributions' top-level modules

        def instrumentation_dependencies(self):
            return ("acme-sdk >= 2, < 4",)

        def patch(self):
            self.wrap("acme.client", "Client.complete", CHAT.sync)
"""

from __future__ import annotations

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
    _hooks: list[tuple[str, Callable[[ModuleType], None]]]

    def instrumentation_dependencies(self) -> Collection[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def patch(self) -> None:
        """Declare the target library's methods with :meth:`wrap`."""
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
        from genops_autoinstrument.launch.finder import get_finder

        finder = get_finder()
        for name, hook in getattr(self, "_hooks", ()):
            finder.unwatch(name, hook)
        self._hooks = []
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
    def wrap(self, module: str | ModuleType, path: str, wrapper: Callable[..., Any]) -> None:
        """Wrap ``module.path`` (``"Class.method"`` or ``"function"``) with a wrapt-style wrapper,
        as soon as module ``module`` has been imported, and again after each re-execution of it.

        Nothing is imported here: a module the application never imports is never patched (nor
        loaded). A missing attribute in this SDK version is a debug line, never an error.
        """
        if isinstance(module, ModuleType):
            self._patch(module, path, wrapper)
            return
        from genops_autoinstrument.launch.finder import get_finder

        def hook(loaded: ModuleType) -> None:
            self._patch(loaded, path, wrapper)

        if not hasattr(self, "_hooks"):
            self._hooks = []
        self._hooks.append((module, hook))
        finder = get_finder()
        finder.install()  # outside genops-run (plain code, opentelemetry-instrument) too
        finder.watch(module, hook)

    def _patch(self, module: ModuleType, path: str, wrapper: Callable[..., Any]) -> bool:
        import wrapt

        try:
            *parents, name = path.split(".")
            owner: Any = module
            for part in parents:
                owner = getattr(owner, part)
            original = owner.__dict__[name] if isinstance(owner, type) and name in owner.__dict__ else getattr(owner, name)
        except (AttributeError, KeyError) as error:
            log.debug("%s: nothing to patch at %s.%s (%s)", type(self).__name__, module.__name__, path, error)
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
