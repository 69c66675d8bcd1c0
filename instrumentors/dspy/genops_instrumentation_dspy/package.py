"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# Distributions (with version ranges) the plugin patches, in `instrumentation_dependencies()` form.
_instruments = ("dspy >= 3.4.1, < 4",)

# Every dspy.LM call (__call__, acall, forward, aforward) runs through this module's
# execute/aexecute; it is imported when the application first calls an LM.
_watched_modules: tuple[str, ...] = ("dspy",)
