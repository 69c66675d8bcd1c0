"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# Distributions (with version ranges) the plugin patches, in `instrumentation_dependencies()` form.
_instruments = ("llama-index-core >= 0.14.25, < 0.15",)

# Importing llama_index.core activates the plugin; it adds its span handler to LlamaIndex's root
# dispatcher (in llama_index_instrumentation, which llama_index.core imports first).
_watched_modules: tuple[str, ...] = ("llama_index.core",)
