"""An ordinary OpenAI application: no GenOps import, configured by OPENAI_* variables as usual.

Run it under GenOps without changing it:  genops-run python examples/openai_chat.py
"""

from openai import OpenAI

client = OpenAI()  # reads OPENAI_API_KEY and OPENAI_BASE_URL

questions = [
    "What is a token budget?",
    "Summarise OpenTelemetry in one sentence.",
]
for question in questions:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": question},
        ],
        max_tokens=60,
    )
    print(f"Q: {question}\nA: {completion.choices[0].message.content}\n")

embedding = client.embeddings.create(model="text-embedding-3-small", input=questions)
print(f"embedded {len(embedding.data)} texts into {len(embedding.data[0].embedding)} dimensions")
