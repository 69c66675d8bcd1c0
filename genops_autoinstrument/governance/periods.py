"""UTC calendar periods for budgets, with an injectable clock so roll-over is testable without sleeping.

A budget of ``team=50/day`` means 50 USD per UTC calendar day: the day's window starts at 00:00 UTC
and its spend is kept under a key naming the day. Weeks are ISO weeks (Monday 00:00 UTC).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

Clock = Callable[[], float]  # seconds since the epoch, like time.time
PERIODS = ("hour", "day", "week", "month", "total")


def system_clock() -> float:
    """The real clock (the default everywhere)."""
    return time.time()


@dataclass(frozen=True)
class Window:
    """One calendar period: its key (part of ledger keys), start and end (epoch seconds; no end for total)."""

    period: str
    key: str
    start: float
    end: float | None


def window(period: str, now: float) -> Window:
    """The UTC window of ``period`` that contains ``now``."""
    if period == "total":
        return Window(period, "total", 0.0, None)
    moment = datetime.fromtimestamp(now, tz=timezone.utc)
    if period == "hour":
        start = moment.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
        key = start.strftime("%Y-%m-%dT%H")
    elif period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
        key = start.strftime("%Y-%m-%d")
    elif period == "week":
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
        iso = start.isocalendar()
        key = f"{iso[0]}-W{iso[1]:02d}"
    elif period == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        key = start.strftime("%Y-%m")
    else:
        raise ValueError(f"unknown budget period {period!r}; expected one of {', '.join(PERIODS)}")
    return Window(period, key, start.timestamp(), end.timestamp())
