"""What this plugin supports: read by the plugin class and by `genops-run --check`.

Verified by running this plugin's test suite against anthropic 1.0.0, 1.14.0, 1.17.0, 2.0.0 and
2.12.0 (all on httpx2). The SDK's own OpenTelemetry call spans, which the plugin replaces, exist
from 1.14.0; on 1.0-1.13 there is nothing to replace and the rest behaves the same.
"""

# Distributions (with version ranges) the plugin patches, in `instrumentation_dependencies()` form.
_instruments = ("anthropic >= 1.0, < 3",)

# `import anthropic` loads the Bedrock and Vertex clients too, so the top-level module is enough.
_watched_modules: tuple[str, ...] = ("anthropic",)
