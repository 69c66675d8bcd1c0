"""What this plugin supports: read by the plugin class and by `genops-run --check`.

The floor is the oldest google-genai that frameworks pin today (llama-index-llms-google-genai:
``google-genai >= 1.52, < 3``; langchain-google-genai >= 2.20, crewai ~= 1.65, pydantic-ai and
google-adk >= 2.30), verified by running this plugin's tests against 1.52.0, 2.0.0 and 3.6.1.
Older SDKs are not governed correctly: before 1.8 they drop ``thoughtsTokenCount`` and
``toolUsePromptTokenCount`` from responses (thinking tokens would go uncounted, so unpriced), and
before about 1.40 a stream's mid-stream error event does not raise.
"""

# Distributions (with version ranges) the plugin patches, in `instrumentation_dependencies()` form.
_instruments = ("google-genai >= 1.52, < 4",)

# `google` is a namespace package shared by many distributions: watch the SDK's own package.
_watched_modules: tuple[str, ...] = ("google.genai",)
