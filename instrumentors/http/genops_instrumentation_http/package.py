"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# The HTTP client libraries it patches, any of which may be installed (the `instruments-any` extra).
_instruments = ("httpx >= 0.27", "httpx2 >= 2", "requests >= 2.31", "aiohttp >= 3.13")

# Modules whose import activates the plugin.
_watched_modules: tuple[str, ...] = ("httpx", "httpx2", "requests", "aiohttp")
