"""``attribution(...)`` and ``track(...)``: blocks of code whose model calls the application describes.

Both are context managers and decorators (sync and async functions alike). Entering one makes a
new scope current (:mod:`genops_autoinstrument.engine.units`): it is inherited by asyncio tasks
and, once the code API is in use, by threads and executor jobs started inside. Nothing here
raises into the application: an internal failure is logged once and the block runs unrecorded.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from typing import Any, Callable, Mapping, TypeVar

from genops_autoinstrument import config, semconv
from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.engine.units import enter_scope, exit_scope

F = TypeVar("F", bound=Callable[..., Any])

#: The attribution keys code may set, by their short names (``customer_id=…`` sets ``genops.customer_id``).
KEYS = tuple(key.removeprefix("genops.") for key in semconv.ATTRIBUTION_KEYS)


def attribution_keys(values: Mapping[str, Any]) -> dict[str, str]:
    """``{"customer_id": "acme"}`` as ``{"genops.customer_id": "acme"}``; a name that is no
    attribution key is a ``TypeError`` (a typo must not silently attribute nothing)."""
    keys: dict[str, str] = {}
    for name, value in values.items():
        if name not in KEYS:
            raise TypeError(f"unknown attribution key {name!r}: expected one of {', '.join(KEYS)}")
        if value is not None:
            keys[f"genops.{name}"] = str(value)
    return keys


def _enabled() -> bool:
    try:
        return config.is_enabled()
    except config.ConfigError:
        return True  # the launcher reports it; never silently drop governance


# The blocks entered with ``with`` in this context, innermost first: (block, state, the rest).
# Kept per context, not on the block: one instance entered by concurrent threads or tasks must
# leave each of them with its own state (a shared list would hand one task the other's token).
_entered: contextvars.ContextVar[tuple[Any, Any, Any] | None] = contextvars.ContextVar("genops_entered_blocks", default=None)


def _leave(block: Any) -> Any:
    """Remove ``block``'s innermost entry from this context's stack; its state (None: none)."""
    entry = _entered.get()
    skipped = []
    while entry is not None and entry[0] is not block:
        skipped.append(entry)
        entry = entry[2]
    if entry is None:  # exited in another context than it was entered in: nothing to undo here
        return None
    rest = entry[2]
    for other, state, _ in reversed(skipped):
        rest = (other, state, rest)
    _entered.set(rest)
    return entry[1]


class _Block:
    """A context manager that is also a decorator; each use (each ``with``, each call of a
    decorated function) enters a fresh scope, so one instance may be shared by threads and tasks."""

    def _enter(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _exit(self, state: Any, error: BaseException | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self) -> "_Block":
        state = self._safe_enter()
        _entered.set((self, state, _entered.get()))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._safe_exit(_leave(self), exc)

    async def __aenter__(self) -> "_Block":
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def _safe_enter(self) -> Any:
        if not _enabled():
            return None
        try:
            return self._enter()
        except Exception as error:
            internal_error(type(self).__name__, error)
            return None

    def _safe_exit(self, state: Any, error: BaseException | None) -> None:
        if state is None:
            return
        try:
            self._exit(state, error)
        except Exception as internal:
            internal_error(type(self).__name__, internal)

    def __call__(self, function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                state = self._safe_enter()
                try:
                    result = await function(*args, **kwargs)
                except BaseException as error:
                    self._safe_exit(state, error)
                    raise
                self._safe_exit(state, None)
                return result

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            state = self._safe_enter()
            try:
                result = function(*args, **kwargs)
            except BaseException as error:
                self._safe_exit(state, error)
                raise
            self._safe_exit(state, None)
            return result

        return run  # type: ignore[return-value]


class attribution(_Block):  # noqa: N801 - used like a function: `with attribution(customer_id=...)`
    """Attribute every model call inside the block: ``with attribution(customer_id="acme"):``.

    Any ``genops.*`` attribution key by its short name (``team``, ``project``, ``environment``,
    ``customer_id``, ``cost_center``, ``feature``). Code overrides the environment and trusted
    baggage; an inner block overrides an outer one. Budgets keyed on these keys use them.
    """

    def __init__(self, **keys: Any) -> None:
        self._keys = attribution_keys(keys)

    def _enter(self) -> Any:
        from genops_autoinstrument.application.propagation import ensure_propagation

        ensure_propagation()
        return enter_scope(self._keys)

    def _exit(self, token: Any, error: BaseException | None) -> None:
        exit_scope(token)


class track(_Block):  # noqa: N801 - used like a function: `with track("rag-query"):`
    """A unit of work: one span for the block, the parent of every model call inside, which at
    its end carries their rolled-up cost, tokens and number of calls.

    The unit's span is a child of the application's current span. It is the parent of GenOps'
    spans inside the block through GenOps' own context, never OpenTelemetry's current span: the
    application's own spans and the SDK's requests inside the block stay as they are bare.

    ``max_cost`` (USD) caps the unit: the first model call that would take it over the cap (by
    the budgets' reservation estimate) is refused with the provider's native budget error, and
    nothing is sent. Attribution keywords work as in :class:`attribution`.
    """

    def __init__(self, name: str, *, max_cost: float | None = None, **keys: Any) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError("track() needs a unit name, e.g. track('rag-query')")
        if max_cost is not None and (not isinstance(max_cost, (int, float)) or isinstance(max_cost, bool) or max_cost < 0):
            raise TypeError(f"max_cost must be a number of USD >= 0, not {max_cost!r}")
        self._name = name
        self._max_cost = None if max_cost is None else float(max_cost)
        self._keys = attribution_keys(keys)

    def _enter(self) -> Any:
        from genops_autoinstrument.application.propagation import ensure_propagation
        from genops_autoinstrument.engine import application
        from genops_autoinstrument.engine.runtime import get_engine

        ensure_propagation()
        engine = get_engine()
        unit = application.open_unit(engine, self._name, application.attribution_now(engine, self._keys), self._max_cost)
        return engine, unit, enter_scope(self._keys, unit)

    def _exit(self, state: Any, error: BaseException | None) -> None:
        from genops_autoinstrument.engine import application

        engine, unit, token = state
        self._last_unit = unit
        exit_scope(token)
        application.close_unit(engine, unit, error)

    @property
    def cost(self) -> float | None:
        """USD this block has rolled up so far (priced calls and tracked costs; final once it has
        ended): the innermost use of this block in the current context, else its latest use.
        None when nothing was recorded (GenOps disabled, or the block never entered)."""
        entry = _entered.get()
        while entry is not None:
            if entry[0] is self and entry[1] is not None:
                return entry[1][1].cost
            entry = entry[2]
        unit = self.__dict__.get("_last_unit")
        return None if unit is None else unit.cost
