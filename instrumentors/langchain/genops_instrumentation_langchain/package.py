"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# Distributions (with version ranges) the plugin patches, in `instrumentation_dependencies()` form.
_instruments = ("langchain-core >= 1.8.1, < 2",)

# Importing langchain_core activates the plugin; it registers its callback handler once
# langchain_core.tracers.context (where LangChain keeps its configure hooks) is imported, which
# LangChain does itself before its first run.
_watched_modules: tuple[str, ...] = ("langchain_core",)
