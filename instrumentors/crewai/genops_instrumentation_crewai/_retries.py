"""A GenOps refusal is final for CrewAI's two retry loops.

CrewAI retries a failed model call twice over (measured on crewai 1.15.30, default settings):

- its LLM layer (``run_with_rate_limit_retry``) repeats a call 3 times with 1-8 s back-off when any
  error in the exception chain looks like a throttle (a 429 status among them). GenOps' budget refusal is the
  SDK's native ``RateLimitError`` (a 429), so it was asked again twice for a call it had refused;
- the agent (``Agent.execute_task``) re-runs the whole task ``max_retry_limit`` (2) more times after
  any error except ``HookAborted`` and ``ToolExecutionFailedError``.

An exhausted budget made 9 refused decisions for one model call, a blocked model 3. The plugin makes
the first refusal final:

- the LLM layer's retry loop has no public way to be told which errors are final (its predicate is
  a private class's classmethod), but it takes the function it waits with (``sleep``, a public
  parameter): the plugin wraps the loop as ``crewai.llms.base_llm`` calls it and gives it a
  ``sleep`` that, after a refused attempt, raises that attempt's error instead of waiting, so the
  loop ends as if it had not retried; real 429s are waited on and retried as before;
- the agent's retry after a refusal is stopped through CrewAI's public hooks: the retried attempt
  (of the same task run) gets an execution-scoped ``before_llm_call`` hook that raises CrewAI's
  ``HookAborted`` from the refusal before the attempt's first model call. CrewAI passes a
  ``HookAborted`` through unretried, so ``crew.kickoff()`` raises it with the SDK's native error as
  its ``__cause__``; ``policy_decision(error)`` finds the decision there. Only a retry after a
  refusal is affected; other errors are retried as CrewAI does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Hashable

from genops_autoinstrument.api import internal_error, is_refusal

_MAX = 1_000  # task runs whose end never arrives must not grow the tables without bound
_lock = threading.Lock()
_refused: dict[Hashable, BaseException] = {}  # task run -> the error its agent attempt failed with
_scopes: dict[Hashable, Any] = {}  # retried agent attempt -> its entered scoped-hooks context


def refusal(error: BaseException | None) -> BaseException | None:
    """The GenOps refusal in ``error``'s chain (causes and contexts), if any."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if is_refusal(current):
            return current
        pending += [current.__cause__, current.__context__]
    return None


def final_refusals(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """wrapt wrapper of ``run_with_rate_limit_retry`` (as ``crewai.llms.base_llm`` calls it): a
    refused attempt is not waited on and repeated, the loop raises its error at once."""
    if not args:
        return wrapped(*args, **kwargs)
    operation, failed = args[0], _Failed()
    sleep = kwargs.get("sleep", time.sleep)

    def attempt() -> Any:
        with failed:
            return operation()

    def pause(seconds: float) -> Any:
        failed.raise_refusal()
        return sleep(seconds)

    return wrapped(attempt, *args[1:], **{**kwargs, "sleep": pause})


async def afinal_refusals(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The same for ``arun_with_rate_limit_retry``."""
    if not args:
        return await wrapped(*args, **kwargs)
    operation, failed = args[0], _Failed()
    sleep = kwargs.get("sleep", asyncio.sleep)

    async def attempt() -> Any:
        with failed:
            return await operation()

    async def pause(seconds: float) -> Any:
        failed.raise_refusal()
        return await sleep(seconds)

    return await wrapped(attempt, *args[1:], **{**kwargs, "sleep": pause})


class _Failed:
    """The error of a retry loop's last attempt; CrewAI's loop waits (``sleep``) before it repeats
    an attempt: a refusal is raised there instead, as the attempt raised it."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def __enter__(self) -> None:
        self.error = None

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        self.error = error

    def raise_refusal(self) -> None:
        error = self.error
        try:
            final = error is not None and refusal(error) is not None
        except Exception as internal:
            internal_error("crewai retry", internal)
            final = False
        if final:
            raise error  # type: ignore[misc]


def agent_failed(agent: Hashable, task: Hashable | None, error: BaseException) -> None:
    """An agent attempt failed: remember a refusal for the retry of the same task run."""
    agent_ended(agent)
    if task is not None and refusal(error) is not None:
        with _lock:
            if len(_refused) < _MAX:
                _refused[task] = error


def agent_started(agent: Hashable, task: Hashable | None) -> None:
    """An agent attempt starts: if it retries a refused one, it is aborted before its first call."""
    with _lock:
        error = _refused.get(task) if task is not None else None
    if error is None:
        return
    from crewai.hooks.dispatch import InterceptionPoint, get_scoped_hooks, scoped_hooks

    # The application's own execution-scoped hooks stay, ours after them, for this attempt only
    # (the context is copied into the agent executor's threads, and reset at the attempt's end).
    hooks = {point: get_scoped_hooks(point) for point in InterceptionPoint}
    hooks[InterceptionPoint.PRE_MODEL_CALL] = [*hooks[InterceptionPoint.PRE_MODEL_CALL], _abort(task, error)]
    scope = scoped_hooks({point: listed for point, listed in hooks.items() if listed})
    scope.__enter__()
    with _lock:
        _scopes[agent] = scope


def agent_ended(agent: Hashable) -> None:
    with _lock:
        scope = _scopes.pop(agent, None)
    if scope is not None:
        try:
            scope.__exit__(None, None, None)
        except ValueError:  # ended in another context than it started in: that context is gone
            pass


def task_ended(task: Hashable) -> None:
    with _lock:
        _refused.pop(task, None)


def _abort(task: Hashable, error: BaseException) -> Callable[[Any], None]:
    def genops_refusal_is_final(context: Any) -> None:
        from crewai.hooks.dispatch import HookAborted

        with _lock:
            if task not in _refused:  # its task run has ended: nothing left to stop
                return
        raise HookAborted(f"refused by GenOps, not retried: {error}"[:512], source="genops") from error

    return genops_refusal_is_final
