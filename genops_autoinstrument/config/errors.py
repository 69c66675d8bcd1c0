"""The configuration error: the launcher turns it into one line and exit status 2."""

from __future__ import annotations


class ConfigError(ValueError):
    """An environment variable holds a value the project cannot accept."""

    def __init__(self, variable: str, value: str, accepted: str) -> None:
        self.variable = variable
        self.value = value
        self.accepted = accepted
        super().__init__(f"invalid value {value!r} for {variable}: expected {accepted}")
