"""An ordinary asyncio OpenAI application: concurrent requests and an async stream.

Run it under GenOps without changing it:  genops-run python examples/openai_async.py
"""

import asyncio

from openai import AsyncOpenAI


async def main() -> None:
    client = AsyncOpenAI()
    topics = ["budgets", "spans", "pricing"]
    answers = await asyncio.gather(
        *(
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"One line about {topic}."}])
            for topic in topics
        )
    )
    for topic, answer in zip(topics, answers):
        print(f"{topic}: {answer.choices[0].message.content}")

    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Stream something asynchronously."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        if chunk.usage:
            print(f"stream used {chunk.usage.total_tokens} tokens")
    print("async stream:", "".join(text))
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
