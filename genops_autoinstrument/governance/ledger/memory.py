"""``memory://``: budget and rate state of this process only (tests, single-process jobs)."""

from __future__ import annotations

import threading
from typing import Sequence

from .base import (
    Bucket,
    BudgetCheck,
    Figures,
    Ledger,
    RateCheck,
    RateOutcome,
    ReserveOutcome,
    is_over,
    rate_over,
    unique_buckets,
)


class MemoryLedger(Ledger):
    """Dictionaries behind one lock; forgotten at exit."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.Lock()
        self._spent: dict[str, int] = {}
        self._expiry: dict[str, float | None] = {}
        self._reservations: dict[str, dict[str, tuple[int, float]]] = {}  # bucket -> ticket -> (amount, expires)
        self._rates: dict[str, tuple[int, float]] = {}  # window key -> (count, forget after)
        self._alerts: set[str] = set()

    def _reserved(self, key: str, now: float) -> int:
        held = self._reservations.get(key)
        if not held:
            return 0
        for ticket in [t for t, (_, expires) in held.items() if expires <= now]:
            del held[ticket]
        return sum(amount for amount, _ in held.values())

    def _figures(self, key: str, now: float) -> Figures:
        expires = self._expiry.get(key)
        if expires is not None and expires <= now:
            self._spent.pop(key, None)
            self._expiry.pop(key, None)
        return Figures(self._spent.get(key, 0), self._reserved(key, now))

    def reserve(self, ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float) -> ReserveOutcome:
        with self._lock:
            figures = tuple(self._figures(check.key, now) for check in checks)
            over = tuple(is_over(f.spent, f.reserved, amount, c.limit) for f, c in zip(figures, checks))
            if any(o and c.blocking for o, c in zip(over, checks)):
                return ReserveOutcome(False, figures, over)
            for bucket in unique_buckets(checks):
                self._expiry.setdefault(bucket.key, bucket.expires_at)
                self._reservations.setdefault(bucket.key, {})[ticket_id] = (amount, expires_at)
            return ReserveOutcome(True, figures, over)

    def settle(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], actual: int, now: float) -> dict[str, Figures]:
        with self._lock:
            result = {}
            for bucket in buckets:
                self._reservations.get(bucket.key, {}).pop(ticket_id, None)
                self._figures(bucket.key, now)
                self._spent[bucket.key] = self._spent.get(bucket.key, 0) + actual
                self._expiry.setdefault(bucket.key, bucket.expires_at)
                result[bucket.key] = self._figures(bucket.key, now)
            return result

    def release(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], now: float) -> None:
        with self._lock:
            for bucket in buckets:
                self._reservations.get(bucket.key, {}).pop(ticket_id, None)

    def hit(self, checks: Sequence[RateCheck], now: float) -> RateOutcome:
        with self._lock:
            now_ms = int(now * 1000)
            plan = []
            for check in checks:
                window_ms = check.window_seconds * 1000
                index = now_ms // window_ms
                current_key = f"{check.key}|{index}"
                previous = self._rates.get(f"{check.key}|{index - 1}", (0, 0.0))[0]
                current = self._rates.get(current_key, (0, 0.0))[0]
                forget = (index + 2) * check.window_seconds
                plan.append((current_key, forget, rate_over(previous, current, now_ms - index * window_ms, window_ms, check.limit)))
            over = tuple(o for _, _, o in plan)
            if any(over):
                return RateOutcome(False, over)
            for current_key, forget, _ in plan:
                self._rates[current_key] = (self._rates.get(current_key, (0, 0.0))[0] + 1, forget)
            if len(self._rates) > 10_000:  # forget windows that no longer count
                self._rates = {k: v for k, v in self._rates.items() if v[1] > now}
            return RateOutcome(True, over)

    def first_alert(self, key: str, expires_at: float | None, now: float) -> bool:
        with self._lock:
            if key in self._alerts:
                return False
            self._alerts.add(key)
            return True

    def figures(self, key: str, now: float) -> Figures:
        with self._lock:
            return self._figures(key, now)

    def after_fork(self) -> None:
        self._lock = threading.Lock()
