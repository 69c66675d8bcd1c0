"""A loop that keeps asking until its budget stops it: an ordinary OpenAI app, no GenOps import.

    GENOPS_TEAM=demo GENOPS_BUDGETS="team=0.0002/day" GENOPS_LEDGER_URL=memory:// \
    GENOPS_PRICING_FILE=examples/demo_prices.toml \
    OPENAI_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=sk-demo \
    genops-run python examples/budget_demo.py

The blocked call raises the SDK's own `openai.RateLimitError` (code `insufficient_quota`, what
OpenAI sends when money runs out), so the loop's ordinary error handling stops it. The error is
also a `genops_autoinstrument.PolicyViolation`; the decision is printed when it is there.
"""

import openai

client = openai.OpenAI()

for attempt in range(1, 101):
    try:
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Give me idea number {attempt} for a team offsite."}],
            max_tokens=60,
        )
    except openai.RateLimitError as error:
        print(f"call {attempt}: stopped: {error.code}: {error}")
        decision = getattr(error, "decision", None)  # present when GenOps blocked the call
        if decision is not None:
            budget = decision.budget
            print(f"  policy={decision.policy_name} result={decision.result} reason={decision.reason_code}")
            if budget is not None:
                print(f"  budget {budget.name}: allocated ${budget.allocated:.6f}, consumed ${budget.consumed:.6f}, remaining ${budget.remaining:.6f}")
        break
    print(f"call {attempt}: {reply.usage.total_tokens} tokens: {reply.choices[0].message.content[:50]}")
