"""What this plugin supports: read by the plugin class and by `genops-run --check`.

The floor, 0.69, is the oldest anthropic that today's connectors accept (langchain-anthropic 1.0.x
and llama-index-llms-anthropic 0.10 declare `anthropic>=0.69`; llama-index-llms-anthropic 0.12.3
fails with anthropic 2.x, so LlamaIndex users run 0.x). CI runs this plugin's tests on 0.69.0 and
on the newest release; they were also run on 0.125.0 and, before, on 1.0.0, 1.14.0, 1.17.0, 2.0.0
and 2.12.0. What differs in 0.x is met in `_compat`.
"""

# Distributions (with version ranges) the plugin patches, in `instrumentation_dependencies()` form.
_instruments = ("anthropic >= 0.69, < 3",)

# `import anthropic` loads the Bedrock and Vertex clients too, so the top-level module is enough.
_watched_modules: tuple[str, ...] = ("anthropic",)
