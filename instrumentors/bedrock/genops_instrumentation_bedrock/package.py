"""What this plugin supports: read by the plugin class and by `genops-run --check`."""

# Converse and ConverseStream arrived in botocore 1.34.116.
_instruments = ("botocore >= 1.34.116, < 2",)

# Only the client module: boto3 is a thin layer over it, and apps using botocore alone are covered.
_watched_modules: tuple[str, ...] = ("botocore.client",)
