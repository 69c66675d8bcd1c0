"""An ordinary Anthropic SDK application: nothing in it knows about GenOps.

Run it against the local provider (no network, no key) and let `genops-run` govern it:

    python -m examples.local_provider --port 8765 &
    ANTHROPIC_BASE_URL=http://127.0.0.1:8765 ANTHROPIC_API_KEY=sk-ant-demo \\
    GENOPS_TEAM=search GENOPS_SUMMARY=1 OTEL_TRACES_EXPORTER=console \\
    genops-run python examples/anthropic_chat.py

Try `GENOPS_BLOCKED_MODELS='claude-opus-*'` or a tiny `GENOPS_BUDGETS="team=0.000001/day"` to see
a call refused before it leaves the process (the app's own `except anthropic.APIStatusError` copes).
"""

from __future__ import annotations

import asyncio
import os
import sys

import anthropic

MODEL = os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-6")
SYSTEM = [{"type": "text", "text": "You are a concise assistant for the search team.", "cache_control": {"type": "ephemeral"}}]


def main() -> int:
    client = anthropic.Anthropic()  # ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL from the environment
    try:
        message = client.messages.create(
            model=MODEL,
            max_tokens=200,
            system=SYSTEM,
            messages=[{"role": "user", "content": "What is a token budget?"}],
        )
        print("create:", message.content[0].text, f"({message.usage.input_tokens} in, {message.usage.output_tokens} out)")

        with client.messages.stream(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Stream three short words."}]
        ) as stream:
            print("stream:", end=" ")
            for text in stream.text_stream:
                print(text, end="", flush=True)
            print(f" [{stream.get_final_message().stop_reason}]")

        async def ask_async() -> str:
            async with anthropic.AsyncAnthropic() as async_client:
                reply = await async_client.messages.create(
                    model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "And asynchronously?"}]
                )
                return reply.content[0].text

        print("async:", asyncio.run(ask_async()))
    except anthropic.APIStatusError as error:  # a GenOps block arrives here as RateLimitError / PermissionDeniedError
        print(f"request refused ({error.status_code}): {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
