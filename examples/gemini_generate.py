"""An ordinary Gemini application: no GenOps import, configured by the SDK's own variables.

    GEMINI_API_KEY=demo GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8765 \
        genops-run python examples/gemini_generate.py

(``python -m examples.local_provider --port 8765`` serves the Gemini API locally.)
"""

from google import genai
from google.genai import types

client = genai.Client()  # reads GEMINI_API_KEY / GOOGLE_API_KEY and GOOGLE_GEMINI_BASE_URL

response = client.models.generate_content(
    model="gemini-2.5-flash",
    contents="What is a token budget?",
    config=types.GenerateContentConfig(system_instruction="You are a concise assistant.", max_output_tokens=60),
)
print(f"A: {response.text}")

print("Streamed: ", end="")
for chunk in client.models.generate_content_stream(model="gemini-2.0-flash", contents="Summarise OpenTelemetry in one sentence."):
    print(chunk.text, end="", flush=True)
print()

chat = client.chats.create(model="gemini-2.0-flash")
chat.send_message("Remember the number 42.")
print(f"Chat: {chat.send_message('Which number did I ask you to remember?').text}")

embedding = client.models.embed_content(model="gemini-embedding-001", contents=["first text", "second text"])
print(f"embedded {len(embedding.embeddings)} texts into {len(embedding.embeddings[0].values)} dimensions")
