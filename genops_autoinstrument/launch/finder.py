"""The one ``sys.meta_path`` finder: runs plugin hooks right after a watched module has executed.

Design (after dd-trace-py's module watchdog and wrapt's post-import hooks):

- ``find_spec`` costs one dict lookup for names nobody watches.
- For a watched name it asks the *other* finders directly (never ``importlib.util.find_spec`` or
  ``import_module``, which take import locks) under a per-thread re-entry guard, then wraps the
  loader in a proxy whose ``exec_module`` runs the real one, puts the original loader objects back
  on ``module.__loader__`` and ``module.__spec__.loader``, and calls the hooks.
- Hooks run after the module finished executing, while the import system still holds that
  module's lock, so another thread importing it waits and then sees the patched module.
- A watched module already imported when its hook is registered is hooked at once; one still being
  imported (by another thread, or up the stack of this one) is hooked when that import finishes.

Only ``sys``, ``_thread`` and builtins are imported here: this module loads on every start.
"""

from __future__ import annotations

import sys
from _thread import get_ident

# No `typing` import: this module loads on every start and annotations stay strings.


def _report(hook: "Callable[[Any], None]", name: str, error: BaseException) -> None:
    # The application's import must succeed whatever a plugin does.
    try:
        from genops_autoinstrument.launch.activation import report_hook_error

        report_hook_error(hook, name, error)
    except Exception:  # pragma: no cover - last resort
        sys.stderr.write(f"genops: warning: a plugin hook for {name} failed: {error!r}\n")


class WatchingFinder:
    """Meta-path finder that intercepts only the module names some plugin watches."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Callable[[Any], None]]] = {}
        self._finding: set[tuple[int, str]] = set()
        self._hooking: set[tuple[int, str]] = set()  # (thread, module) whose hooks run right now

    # --- registration ------------------------------------------------------------------------
    def watch(self, name: str, hook: Callable[[Any], None]) -> None:
        """Call ``hook(module)`` after every execution of module ``name`` (now, if already imported)."""
        self._hooks.setdefault(name, []).append(hook)
        module = sys.modules.get(name)
        if module is None:
            return
        spec = getattr(module, "__spec__", None)
        executed = (get_ident(), name) in self._hooking  # executed; its hooks (this one's caller) run now
        if spec is not None and getattr(spec, "_initializing", False) and not executed:
            _when_imported(name, lambda: self._run(name, [hook]))
        else:
            self._run(name, [hook], module)

    def unwatch(self, name: str, hook: Callable[[Any], None]) -> None:
        """Stop calling ``hook`` for module ``name`` (a plugin was uninstrumented)."""
        hooks = self._hooks.get(name)
        if hooks is None:
            return
        hooks[:] = [registered for registered in hooks if registered is not hook]
        if not hooks:
            del self._hooks[name]

    @property
    def watched(self) -> frozenset[str]:
        return frozenset(self._hooks)

    def install(self) -> None:
        """Put the finder first on ``sys.meta_path`` (once)."""
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        while self in sys.meta_path:
            sys.meta_path.remove(self)

    # --- the import protocol -----------------------------------------------------------------
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self._hooks:
            return None
        key = (get_ident(), fullname)
        if key in self._finding:
            return None
        self._finding.add(key)
        try:
            spec = None
            for finder in list(sys.meta_path):
                if finder is self:
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        finally:
            self._finding.discard(key)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        if getattr(spec.loader, "_self_genops_finder", None) is not None:
            return spec  # already ours (another finder returned our own spec)
        spec.loader = _hooked_loader(spec.loader, self, fullname)
        return spec

    def invalidate_caches(self) -> None:
        """Part of the finder protocol; nothing is cached here."""

    # --- running hooks -----------------------------------------------------------------------
    def _run(self, name: str, hooks: list[Callable[[Any], None]] | None = None, module: Any = None) -> None:
        module = module if module is not None else sys.modules.get(name)
        if module is None:
            return
        key = (get_ident(), name)
        nested = key in self._hooking
        self._hooking.add(key)
        try:
            for hook in list(hooks if hooks is not None else self._hooks.get(name, ())):
                try:
                    hook(module)
                except Exception as error:
                    _report(hook, name, error)
        finally:
            if not nested:
                self._hooking.discard(key)


_HookedLoader = None


def _hooked_loader(loader: Any, finder: WatchingFinder, name: str) -> Any:
    global _HookedLoader
    if _HookedLoader is None:
        import wrapt

        class HookedLoader(wrapt.ObjectProxy):  # type: ignore[misc]
            """The real loader plus hooks after ``exec_module``; passes ``isinstance`` as the original."""

            def __init__(self, wrapped: Any, finder: WatchingFinder, name: str) -> None:
                super().__init__(wrapped)
                self._self_genops_finder = finder
                self._self_genops_name = name

            def create_module(self, spec: Any) -> Any:
                create = getattr(self.__wrapped__, "create_module", None)
                return create(spec) if create is not None else None

            def exec_module(self, module: Any) -> None:
                original = self.__wrapped__
                try:
                    original.exec_module(module)
                finally:
                    if getattr(module, "__loader__", None) is self:
                        module.__loader__ = original
                    spec = getattr(module, "__spec__", None)
                    if spec is not None and spec.loader is self:
                        spec.loader = original
                name = self._self_genops_name
                self._self_genops_finder._run(name, None, sys.modules.get(name, module))

        _HookedLoader = HookedLoader
    return _HookedLoader(loader, finder, name)


def _when_imported(name: str, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the import of ``name`` in progress (any thread) has finished."""
    import threading

    def wait() -> None:
        try:
            from importlib._bootstrap import _ModuleLockManager  # type: ignore[attr-defined]

            with _ModuleLockManager(name):
                pass
        except Exception:  # pragma: no cover - private API moved: poll instead
            import time

            module = sys.modules.get(name)
            while module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False):
                time.sleep(0.001)
        # The same thread can re-enter its own import lock: wait for the flag itself too.
        import time

        module = sys.modules.get(name)
        while module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False):
            time.sleep(0.001)
        callback()

    threading.Thread(target=wait, name=f"genops-wait-{name}", daemon=True).start()


_finder: WatchingFinder | None = None


def get_finder() -> WatchingFinder:
    """The process's finder (created, not installed, on first use)."""
    global _finder
    if _finder is None:
        _finder = WatchingFinder()
    return _finder
