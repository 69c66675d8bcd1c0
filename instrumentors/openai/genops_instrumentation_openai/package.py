"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# Distributions (with version ranges) the plugin patches, in `instrumentation_dependencies()` form.
_instruments = ("openai >= 1.40, < 4",)

# Modules whose import activates the plugin.
_watched_modules: tuple[str, ...] = ("openai",)
