"""GenOps plugin for Amazon Bedrock Runtime: Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream.

It wraps ``botocore.client.BaseClient._make_api_call`` (so boto3 and plain botocore clients are
both covered) and lets every call of another service, or another operation, straight through
after one dict lookup. It never imports boto3, and botocore only once ``botocore.client`` is loaded:
discovery imports this module without the target.
"""

from __future__ import annotations

from typing import Any, Collection

from genops_autoinstrument.api import (
    BlockFactory,
    Call,
    CallRequest,
    Decision,
    GenOpsInstrumentor,
    Prepared,
    RecordedMethod,
    RecordedStream,
    capture_content,
    native_violation,
    semconv,
    server_of_url,
)

from . import _models, _prompt
from .package import _instruments, _watched_modules

__all__ = ["BedrockInstrumentor", "PROVIDER"]

PROVIDER = "aws.bedrock"
SERVICE = "bedrock-runtime"
_CONVERSE, _CONVERSE_STREAM, _INVOKE, _INVOKE_STREAM = "Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"
_OPERATIONS = frozenset({_CONVERSE, _CONVERSE_STREAM, _INVOKE, _INVOKE_STREAM})


def _endpoint(client: Any) -> tuple[str | None, str | None, int | None]:
    """(regional endpoint URL, host, port) of the client.

    The URL is the standard Bedrock Runtime endpoint of the client's region, even when the client
    talks to a VPC, FIPS, proxy or local endpoint (whose host and port are still recorded as
    server.address/port): pricing finds AWS prices, and users' per-region prices, from it.
    """
    url = getattr(client.meta, "endpoint_url", None)
    host, port = server_of_url(url)
    region = getattr(client.meta, "region_name", None)
    if isinstance(region, str) and region and region.replace("-", "").isalnum():
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        url = f"https://{SERVICE}.{region}.{suffix}"
    return url, host, port


def _describe(client: Any, operation: str, params: Any) -> CallRequest:
    """The CallRequest of one Bedrock Runtime call, from its API parameters."""
    params = params if isinstance(params, dict) else {}
    model = _models.model_id(params.get("modelId"))
    url, host, port = _endpoint(client)
    streaming = operation in (_CONVERSE_STREAM, _INVOKE_STREAM)
    if operation in (_CONVERSE, _CONVERSE_STREAM):
        parameters = _models.converse_parameters(params)
        return CallRequest(
            provider=PROVIDER,
            operation=semconv.OPERATION_CHAT,
            request_model=model,
            server_address=host,
            server_port=port,
            api_base_url=url,
            parameters=parameters,
            max_output_tokens=parameters.get(semconv.GEN_AI_REQUEST_MAX_TOKENS),
            streaming=streaming,
            prompt_text=lambda: _prompt.converse_texts(params),
            input_messages=lambda: _models.converse_messages(params.get("messages"), params.get("system")),
        )
    raw = params.get("body")
    body = _models.parse_json(raw)
    body = body if isinstance(body, dict) else None
    parameters = _models.invoke_parameters(body, _models.vendor(model)) if body is not None else {}
    max_tokens = parameters.get(semconv.GEN_AI_REQUEST_MAX_TOKENS)
    return CallRequest(
        provider=PROVIDER,
        operation=_models.invoke_operation(model, body),
        request_model=model,
        server_address=host,
        server_port=port,
        api_base_url=url,
        parameters=parameters,
        max_output_tokens=max_tokens if isinstance(max_tokens, int) else None,
        streaming=streaming,
        prompt_text=(lambda: _prompt.body_texts(body)) if body is not None else _prompt.unparsed(raw),
        input_messages=(lambda: body.get("messages") or [{"role": "user", "parts": [{"type": "text", "content": text} for text in _models.texts(body)]}]) if body is not None else None,
    )


def _blocker(client: Any, operation: str) -> BlockFactory:
    """A policy block as the client's own modeled error: ThrottlingException (budget/rate, 429) or
    AccessDeniedException (rule, 403), both botocore ClientErrors, and PolicyViolation."""

    def block(decision: Decision) -> BaseException:
        code, status = ("ThrottlingException", 429) if decision.is_budget else ("AccessDeniedException", 403)
        message = decision.explanation
        response = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0},
            "message": message,
        }
        try:
            native = client.exceptions.from_code(code)
        except Exception:  # pragma: no cover - very old or stubbed clients
            from botocore.exceptions import ClientError as native
        return native_violation(native, decision, lambda cls: cls(response, operation))

    return block


def _prepare(client: Any, args: tuple, kwargs: dict) -> Prepared | None:
    """``_make_api_call(operation_name, api_params)``: a model call of Bedrock Runtime, or None.

    ``state`` is ``(operation, capture content?)`` for :func:`_read`.
    """
    operation = args[0] if args else kwargs.get("operation_name")
    if operation not in _OPERATIONS or client.meta.service_model.service_name != SERVICE:
        return None
    request = _describe(client, operation, args[1] if len(args) > 1 else kwargs.get("api_params"))
    return Prepared(request, block=_blocker(client, operation), state=(operation, capture_content()))


def _read(call: Call, response: Any, prepared: Prepared, is_async: bool) -> Any:
    """Finish the call from the parsed response, or hand its event stream to a RecordedStream."""
    from . import _responses

    operation, capture = prepared.state
    if not isinstance(response, dict):
        call.finish()
    elif operation == _CONVERSE:
        _responses.finish_converse(call, response, capture)
    elif operation == _INVOKE:
        _responses.finish_invoke(call, response, capture)
    else:
        key = "stream" if operation == _CONVERSE_STREAM else "body"
        stream = response.get(key)
        if stream is None:
            call.finish()
        else:
            accumulator = _responses.ConverseStreamAccumulator(capture) if operation == _CONVERSE_STREAM else _responses.InvokeStreamAccumulator(capture)
            response[key] = RecordedStream(stream, call, accumulator)
    return response


_MAKE_API_CALL = RecordedMethod("bedrock", _prepare, _read)


class BedrockInstrumentor(GenOpsInstrumentor):
    """Records Bedrock Runtime model calls made through botocore (and so boto3)."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        self.wrap("botocore.client", "BaseClient._make_api_call", _MAKE_API_CALL.sync)
