"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# Distributions (with version ranges) the plugin registers with, in `instrumentation_dependencies()` form.
_instruments = ("haystack-ai >= 3.4, < 4",)

# Importing haystack activates the plugin; it enables its tracer once haystack.tracing.tracer (where
# Haystack keeps its global tracer) is imported, which `import haystack` does itself.
_watched_modules: tuple[str, ...] = ("haystack",)
