"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# The HTTP client libraries it patches, any of which may be installed (the `instruments-any` extra).
# aiohttp is bounded above: its adapter relies on private internals (ClientSession._request, the
# StreamReader's _buffer/_cursor/_http_chunk_splits, a __class__ swap) of the releases tested.
_instruments = ("httpx >= 0.27", "httpx2 >= 2", "requests >= 2.31", "aiohttp >= 3.13, < 3.15")

# Modules whose import activates the plugin.
_watched_modules: tuple[str, ...] = ("httpx", "httpx2", "requests", "aiohttp")
