"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# Distributions (with version ranges) the plugin configures, in `instrumentation_dependencies()` form.
_instruments = ("pydantic-ai-slim >= 2.78, < 3",)

# Importing pydantic_ai activates the plugin; it hands GenOps' providers to pydantic-ai's
# Agent.instrument_all once pydantic_ai has finished loading, before the application's first run.
_watched_modules: tuple[str, ...] = ("pydantic_ai",)
