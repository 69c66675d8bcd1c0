"""Runnable example applications (a package only so `python -m examples.local_provider` works)."""
