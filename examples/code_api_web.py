"""A web app that tells GenOps what only it knows: who each request is for, and what it may cost.

The customer comes from the app's own authentication (an API key it issued), so no gateway or
environment variable could set it; each request is one unit of work with a cost cap, so a
runaway "refine the answer" loop is stopped at the cap instead of burning the budget.

    OPENAI_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=sk-demo \
    GENOPS_PRICING_FILE=examples/demo_prices.toml \
    genops-run python examples/code_api_web.py --port 8000

    curl -s localhost:8000/answer -H 'authorization: Bearer key-acme' \
         -H 'content-type: application/json' -d '{"question": "What is a token budget?", "steps": 2}'

A request whose unit would pass its cap gets ``402`` with the cap and what was spent; a rate
limit ``429``; a model or content rule ``403``. Without ``genops-run`` (or with
``GENOPS_ENABLED=false``) the app runs the same, unrecorded and uncapped.
"""

from __future__ import annotations

import argparse
import os
import socket

import openai
import uvicorn
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from genops_autoinstrument import PolicyViolation, attribution, track

#: The app's own API keys and the customer each was issued to (a database in a real app).
CUSTOMERS = {"key-acme": "acme", "key-globex": "globex"}
#: The most one answer may cost, in USD (all its model calls together).
MAX_COST_PER_ANSWER = float(os.environ.get("ANSWER_MAX_COST_USD", "0.0001"))
MODEL = "gpt-4o-mini"

app = FastAPI(title="GenOps code API demo")
client = openai.AsyncOpenAI()  # reads OPENAI_API_KEY and OPENAI_BASE_URL


class Question(BaseModel):
    question: str
    steps: int = Field(default=1, ge=1, le=100, description="draft, then refine steps-1 times")


def customer_of(authorization: str) -> str:
    """The app's own authentication: only a key it issued names a customer."""
    customer = CUSTOMERS.get(authorization.removeprefix("Bearer ").strip())
    if customer is None:
        raise HTTPException(status_code=401, detail="unknown API key")
    return customer


async def draft_and_refine(question: str, steps: int) -> str:
    """An agent-like loop: every step is one model call, each with a longer conversation."""
    messages = [{"role": "system", "content": "Answer in one sentence."}, {"role": "user", "content": question}]
    answer = ""
    for step in range(steps):
        reply = await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=60)
        answer = reply.choices[0].message.content or ""
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": f"Refine your answer (step {step + 2})."}]
    return answer


def refused(customer: str, blocked: PolicyViolation) -> JSONResponse:
    """A governance refusal as this app's own response: 402 for money, 429 for rate, 403 for rules."""
    status = {"BUDGET_EXCEEDED": 402, "RATE_LIMITED": 429, "BUDGET_RESERVATION_FAILED": 503}.get(blocked.reason_code or "", 403)
    body = {"customer": customer, "error": blocked.reason_code, "policy": blocked.policy_name, "message": str(blocked)}
    if blocked.budget is not None:
        body.update(cap_usd=blocked.budget.allocated, spent_usd=blocked.budget.consumed)
    return JSONResponse(body, status_code=status)


@app.post("/answer")
async def answer(question: Question, authorization: str = Header(default="")) -> JSONResponse:
    customer = customer_of(authorization)
    try:
        with attribution(customer_id=customer, feature="answer"):
            async with track("answer", max_cost=MAX_COST_PER_ANSWER):
                text = await draft_and_refine(question.question, question.steps)
    except PolicyViolation as blocked:  # also the SDK's own error (openai.RateLimitError here)
        return refused(customer, blocked)
    return JSONResponse({"customer": customer, "answer": text, "steps": question.steps})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the bound port here once listening (tests)")
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", args.port))
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as handle:
            handle.write(f"{listener.getsockname()[1]}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])


if __name__ == "__main__":
    main()
