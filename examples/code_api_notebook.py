"""Notebook-style: no launcher, one line turns GenOps on; a unit of work with an evaluation.

Each block below is a notebook cell. Run it as a script the same way:

    OPENAI_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=sk-demo \
    GENOPS_PRICING_FILE=examples/demo_prices.toml GENOPS_TEAM=research \
    python examples/code_api_notebook.py

Configuration is the same environment variables as ever (set them before the first cell, or in
the kernel's environment). Under ``genops-run`` the ``instrument()`` line is a no-op.
"""

# %% One line instead of genops-run.
import genops_autoinstrument

started = genops_autoinstrument.instrument()
print(f"instrument() started GenOps: {started}")

# %% An ordinary OpenAI client.
from openai import OpenAI

client = OpenAI()
question = "Summarise why unit-level cost caps matter."

# %% One unit of work: its model calls roll up into it, and the evaluation is recorded on it.
from genops_autoinstrument import record_eval, track

with track("summarise", feature="notebook") as unit:
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}], max_tokens=60)
    verdict = record_eval("relevance", 0.82, threshold=0.7)

print(f"answer: {reply.choices[0].message.content}")
print(f"relevance 0.82 against 0.7: {verdict}")
print("unit cost: not recorded" if unit.cost is None else f"unit cost: ${unit.cost:.8f}")
