"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# Distributions (with version ranges) the plugin patches, in `instrumentation_dependencies()` form.
# Keep it equal to the `instruments` extra in pyproject.toml: discovery reads that one from metadata.
_instruments = ("provider-sdk >= 1, < 2",)

# Modules whose import activates the plugin. Leave empty to use the top-level modules of the
# distributions above; declare them for namespace packages or submodules (e.g. "google.genai").
_watched_modules: tuple[str, ...] = ()
