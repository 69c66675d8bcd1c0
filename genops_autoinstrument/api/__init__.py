"""The plugin kit: the only part of GenOps that instrumentor plugins import.

A plugin subclasses :class:`GenOpsInstrumentor`, declares its targets with ``self.wrap(...)``
(each patched when its own module is imported), and maps its SDK's requests and responses onto
:class:`RecordedMethod` / :class:`CallRequest` / :meth:`Call.finish`. Streams go through
:class:`RecordedStream` with a :class:`StreamAccumulator` of the plugin's own. Everything else
(policy, budgets, spans, metrics, prices, attribution) is the engine's, once, for every provider.
"""

from __future__ import annotations

from genops_autoinstrument import semconv
from genops_autoinstrument.api.helpers import capture_content, get, given, is_mapping, server_of_url
from genops_autoinstrument.api.instrumentor import GenOpsInstrumentor, is_genops_wrapped
from genops_autoinstrument.api.kit import BlockFactory, Prepared, RecordedMethod
from genops_autoinstrument.api.streams import RecordedAsyncStream, RecordedStream, StreamAccumulator
from genops_autoinstrument.config import ConfigError, plugin_variable, read_plugin_variable
from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.engine.call import NULL_CALL, Call, CallRequest, in_recorded_call
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.governance.decisions import BudgetStatus, Decision, PolicyViolation, native_violation
from genops_autoinstrument.governance.refusals import remember_refusal
from genops_autoinstrument.pricing.usage import Usage

__all__ = [
    "BlockFactory",
    "BudgetStatus",
    "Call",
    "CallRequest",
    "ConfigError",
    "Decision",
    "GenOpsInstrumentor",
    "NULL_CALL",
    "PolicyViolation",
    "Prepared",
    "RecordedAsyncStream",
    "RecordedMethod",
    "RecordedStream",
    "StreamAccumulator",
    "Usage",
    "begin_call",
    "capture_content",
    "get",
    "given",
    "in_recorded_call",
    "internal_error",
    "is_genops_wrapped",
    "is_mapping",
    "native_violation",
    "plugin_variable",
    "read_plugin_variable",
    "remember_refusal",
    "semconv",
    "server_of_url",
]

# The wire layer's kit (plugins that see model calls as HTTP requests): provider names from hosts,
# native block answers, attempts, and response bodies read along with the application.
from genops_autoinstrument.api.wire import BlockedReply, blocked_reply, http_status_error, note_attempt, provider_for_host  # noqa: E402
from genops_autoinstrument.api.wire_streams import WireAccumulator, WireBody  # noqa: E402

__all__ += ["BlockedReply", "WireAccumulator", "WireBody", "blocked_reply", "http_status_error", "note_attempt", "provider_for_host"]

# Framework plugins: runs a framework opens and closes by events (agent, chain, tool), as units of work.
from genops_autoinstrument.api.runs import (  # noqa: E402
    GEN_AI_AGENT_ID,
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_DESCRIPTION,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_TYPE,
    OPERATION_EXECUTE_TOOL,
    OPERATION_INVOKE_AGENT,
    Runs,
    when_imported,
)

__all__ += [
    "GEN_AI_AGENT_ID", "GEN_AI_AGENT_NAME", "GEN_AI_CONVERSATION_ID", "GEN_AI_TOOL_CALL_ID", "GEN_AI_TOOL_DESCRIPTION",
    "GEN_AI_TOOL_NAME", "GEN_AI_TOOL_TYPE", "OPERATION_EXECUTE_TOOL", "OPERATION_INVOKE_AGENT", "Runs", "when_imported",
]

# Framework plugins: whether an error is GenOps' refusal (a retry predicate's question).
from genops_autoinstrument.api.runs import is_refusal  # noqa: E402

__all__ += ["is_refusal"]

# Plugins that hold a whole request (a parsed body, a framework's request objects): its free texts.
from genops_autoinstrument.api.texts import free_texts  # noqa: E402

__all__ += ["free_texts"]
