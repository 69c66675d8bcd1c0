"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# Distributions (with version ranges) the plugin patches, in `instrumentation_dependencies()` form.
_instruments = ("google-genai >= 1.0, < 4",)

# `google` is a namespace package shared by many distributions: watch the SDK's own package.
_watched_modules: tuple[str, ...] = ("google.genai",)
