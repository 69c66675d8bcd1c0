"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# Distributions (with version ranges) the plugin patches, in `instrumentation_dependencies()` form.
_instruments = ("crewai >= 1.15.30, < 1.16",)

# Importing crewai activates the plugin; it follows CrewAI's event bus (crewai.events.event_bus,
# which `import crewai` loads first).
_watched_modules: tuple[str, ...] = ("crewai",)
