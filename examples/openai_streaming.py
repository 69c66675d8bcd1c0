"""An ordinary OpenAI application that streams, both with Chat Completions and the Responses API.

Run it under GenOps without changing it:  genops-run python examples/openai_streaming.py
"""

from openai import OpenAI

client = OpenAI()

stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Stream a short greeting to the GenOps demo."}],
    stream=True,
)
print("chat:", end=" ", flush=True)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()

with client.responses.stream(model="gpt-4.1-mini", input="Stream an answer from the Responses API.") as events:
    print("responses:", end=" ", flush=True)
    for event in events:
        if event.type == "response.output_text.delta":
            print(event.delta, end="", flush=True)
    final = events.get_final_response()
print(f"\n({final.usage.input_tokens} input / {final.usage.output_tokens} output tokens)")
