"""CrewAI's events as GenOps runs: crews, tasks, agent executions and tool calls.

Imported only once ``crewai.events.event_bus`` has been imported. Every CrewAI event passes
through ``CrewAIEventsBus.emit`` in the thread and context that emits it, after which CrewAI
hands it to the listeners (``BaseEventListener``, ``crewai_event_bus.on``) on a pool of worker
threads. A listener therefore runs after the fact and in another thread: it could not make a run
the current scope of the calls made inside it (the agent's model calls, made in the agent
executor's own worker threads, which copy the emitting context). So the plugin reads each event
where it is emitted, once CrewAI has given it its ids (``event_id``, ``parent_event_id``, and
``started_event_id`` on an ending event), and leaves the event and its delivery unchanged.

- ``crew_kickoff_started`` … ``completed``/``failed``: a span named after the crew;
- ``task_started`` … ``completed``/``failed``: a span named after the task (``task`` without one);
- ``agent_execution_started`` … ``completed``/``error`` (one per attempt of CrewAI's agent retry),
  and a LiteAgent's: ``invoke_agent {role}`` with ``gen_ai.agent.name`` = the agent's role,
  which every call under it is attributed to;
- ``tool_usage_started`` … ``finished``/``error``: ``execute_tool {tool}``;
- every other scope CrewAI opens (the agent executor's flow, an LLM call…) opens no span: its
  children belong to its parent's run; a model call is the provider plugin's CLIENT span, once.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

from genops_autoinstrument.api import (
    GEN_AI_AGENT_ID,
    GEN_AI_AGENT_NAME,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_TYPE,
    OPERATION_EXECUTE_TOOL,
    OPERATION_INVOKE_AGENT,
    Runs,
    internal_error,
    semconv,
)

from . import _retries

GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"
CREW_NAME = "crewai.crew.name"
TASK_NAME = "crewai.task.name"
TASK_ID = "crewai.task.id"

_runs = Runs("crewai")
_lock = threading.Lock()
_agents: dict[str, list[str]] = {}  # task run -> its agent attempts not ended yet
_opened: dict[tuple[str, int], list[str]] = {}  # (kind, id of the crew or task) -> its open runs
_MAX_OPEN = 1_000  # runs whose end never arrives must not grow the tables without bound


def _opening(kind: str, owner: Any, key: str) -> None:
    with _lock:
        if len(_opened) < _MAX_OPEN:
            _opened.setdefault((kind, id(owner)), []).append(key)


def _closing(kind: str, owner: Any, event: Any) -> str:
    """The run an ending event closes: the crew's or task's open run (CrewAI pairs an ending event
    with the innermost scope it has open, which is another one after an error it let through
    without its end event), else the event's ``started_event_id``."""
    with _lock:
        keys = _opened.get((kind, id(owner)))
        if keys:
            key = keys.pop()
            if not keys:
                del _opened[(kind, id(owner))]
            return key
    return event.started_event_id


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _error(event: Any) -> BaseException:
    """The exception an error event reports: the one being handled where CrewAI emits it (its
    ``except`` block), else one carrying the event's message."""
    handled = sys.exc_info()[1]
    if isinstance(handled, Exception):
        return handled
    return RuntimeError(str(getattr(event, "error", None) or "failed"))


def _crew(event: Any) -> None:
    name = _text(getattr(event, "crew_name", None)) or "crew"
    _opening("crew", getattr(event, "crew", None), event.event_id)
    _runs.start(event.event_id, event.parent_event_id, name, attributes={CREW_NAME: name})


def _task(event: Any) -> None:
    task = getattr(event, "task", None)
    name = _text(getattr(task, "name", None))
    attributes = {TASK_ID: str(getattr(task, "id", ""))}
    if name:
        attributes[TASK_NAME] = name
    _opening("task", task, event.event_id)
    _runs.start(event.event_id, event.parent_event_id, name or "task", attributes=attributes)


def _agent(event: Any) -> None:
    agent = getattr(event, "agent", None)
    info = getattr(event, "agent_info", None) or {}  # a LiteAgent's event
    role = _text(getattr(agent, "role", None)) or _text(info.get("role")) or "agent"
    attributes = {semconv.GEN_AI_OPERATION_NAME: OPERATION_INVOKE_AGENT, GEN_AI_AGENT_NAME: role}
    agent_id = getattr(agent, "id", None) or info.get("id")
    if agent_id:
        attributes[GEN_AI_AGENT_ID] = str(agent_id)
    goal = _text(getattr(agent, "goal", None)) or _text(info.get("goal"))
    if goal:
        attributes[GEN_AI_AGENT_DESCRIPTION] = goal
    span_name = f"{OPERATION_INVOKE_AGENT} {role}"
    _runs.start(event.event_id, event.parent_event_id, role, span_name=span_name, attributes=attributes, attribution={GEN_AI_AGENT_NAME: role})
    if event.parent_event_id is not None:
        with _lock:
            if len(_agents) < 1_000:
                _agents.setdefault(event.parent_event_id, []).append(event.event_id)
    _retries.agent_started(event.event_id, event.parent_event_id)


def _tool(event: Any) -> None:
    name = _text(getattr(event, "tool_name", None)) or "tool"
    attributes = {semconv.GEN_AI_OPERATION_NAME: OPERATION_EXECUTE_TOOL, GEN_AI_TOOL_NAME: name, GEN_AI_TOOL_TYPE: "function"}
    _runs.start(event.event_id, event.parent_event_id, name, span_name=f"{OPERATION_EXECUTE_TOOL} {name}", attributes=attributes)


def _ended(event: Any) -> None:
    _runs.end(event.started_event_id)


def _failed(event: Any) -> None:
    _runs.end(event.started_event_id, _error(event))


def _forget(agent: str, task: str | None) -> None:
    with _lock:
        attempts = _agents.get(task) if task is not None else None
        if attempts and agent in attempts:
            attempts.remove(agent)


def _agent_ended(event: Any) -> None:
    _forget(event.started_event_id, event.parent_event_id)
    _retries.agent_ended(event.started_event_id)
    _runs.end(event.started_event_id)


def _agent_failed(event: Any) -> None:
    error = _error(event)
    _forget(event.started_event_id, event.parent_event_id)
    _retries.agent_failed(event.started_event_id, event.parent_event_id, error)
    _runs.end(event.started_event_id, error)


def _task_end(event: Any, error: BaseException | None) -> None:
    """A task ends: so do its agent attempts whose end CrewAI does not emit (an error it passes
    through unretried, such as ``HookAborted``, skips ``agent_execution_error``)."""
    task = _closing("task", getattr(event, "task", None), event)
    with _lock:
        attempts = _agents.pop(task, [])
    for agent in reversed(attempts):
        _retries.agent_ended(agent)
        _runs.end(agent, error)
    _retries.task_ended(task)
    _runs.end(task, error)


def _crew_ended(event: Any) -> None:
    _runs.end(_closing("crew", getattr(event, "crew", None), event))


def _crew_failed(event: Any) -> None:
    _runs.end(_closing("crew", getattr(event, "crew", None), event), _error(event))


def _task_ended(event: Any) -> None:
    _task_end(event, None)


def _task_failed(event: Any) -> None:
    _task_end(event, _error(event))


_HANDLERS: dict[str, Callable[[Any], None]] = {
    "crew_kickoff_started": _crew,
    "crew_kickoff_completed": _crew_ended,
    "crew_kickoff_failed": _crew_failed,
    "task_started": _task,
    "task_completed": _task_ended,
    "task_failed": _task_failed,
    "agent_execution_started": _agent,
    "agent_execution_completed": _agent_ended,
    "agent_execution_error": _agent_failed,
    "lite_agent_execution_started": _agent,
    "lite_agent_execution_completed": _agent_ended,
    "lite_agent_execution_error": _agent_failed,
    "tool_usage_started": _tool,
    "tool_usage_finished": _ended,
    "tool_usage_error": _failed,
}


def _record(event: Any, starting: frozenset[str], ending: frozenset[str]) -> None:
    kind = getattr(event, "type", None)
    handler = _HANDLERS.get(kind)  # type: ignore[arg-type]
    if handler is not None:
        handler(event)
    elif kind in starting:  # a scope of CrewAI's that is not a run: its children are its parent's
        _runs.enter(event.event_id, event.parent_event_id, hidden=True)
    elif kind in ending and event.started_event_id is not None:
        _runs.end(event.started_event_id)


def emitted(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """wrapt wrapper of ``CrewAIEventsBus.emit``: CrewAI prepares and dispatches the event as
    always, then the plugin records it in the emitting context."""
    result = wrapped(*args, **kwargs)
    try:
        event = args[1] if len(args) > 1 else kwargs.get("event")
        if event is not None:
            from crewai.events.event_context import SCOPE_ENDING_EVENTS, SCOPE_STARTING_EVENTS

            _record(event, SCOPE_STARTING_EVENTS, SCOPE_ENDING_EVENTS)
    except Exception as error:
        internal_error("crewai event", error)
    return result


def runs() -> Runs:
    """The plugin's open runs (tests, diagnostics)."""
    return _runs
