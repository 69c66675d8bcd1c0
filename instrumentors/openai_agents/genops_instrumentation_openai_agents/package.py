"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# Distributions (with version ranges) the plugin hooks into, in `instrumentation_dependencies()` form.
_instruments = ("openai-agents >= 0.24.0, < 1",)

# Importing the Agents SDK (top-level package `agents`) activates the plugin; it registers its
# trace processor once `agents.tracing` (where the SDK keeps its processors) is imported, which
# `import agents` does itself.
_watched_modules: tuple[str, ...] = ("agents",)
