"""The ledger contract: atomic check-and-reserve, settle, release, rate windows and once-per-period alerts.

Records are NamedTuples (immutable and cheap: they are made several times per call).
Money is kept as whole nano-dollars (``int``) so that every backend adds exactly and the same
figures come out of SQLite, Redis and memory. Every backend applies the same two rules, written
once here (:func:`is_over`, :func:`rate_over`) and mirrored in the Redis Lua scripts.
"""

from __future__ import annotations

import abc
from typing import NamedTuple, Sequence

NANOS_PER_USD = 1_000_000_000
RESERVATION_TTL_SECONDS = 600.0  # a reservation not settled within 10 minutes (killed process) stops counting
ALERT_GRACE_SECONDS = 3600.0  # keys outlive their period by this, so late settlements still land


def to_nanos(usd: float) -> int:
    """USD -> whole nano-dollars (rounded)."""
    return int(round(float(usd) * NANOS_PER_USD))


def to_usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


def is_over(spent: int, reserved: int, amount: int, limit: int) -> bool:
    """A budget refuses a new reservation when it would overrun, or when it is already used up."""
    return spent + reserved + amount > limit or spent + reserved >= limit


def rate_over(previous: int, current: int, elapsed_ms: int, window_ms: int, limit: int) -> bool:
    """Sliding-window counter: the previous window counts for the part of it still inside the window."""
    return previous * (window_ms - elapsed_ms) + (current + 1) * window_ms > limit * window_ms


class LedgerError(Exception):
    """The ledger could not answer in time (unreachable, locked, timed out); GENOPS_FAIL_MODE decides."""


class LedgerRefused(LedgerError):
    """The ledger as configured is not safe or not usable (a file another user controls, no home folder).

    Not transient: the message names the path and the fix, and is logged once per process.
    """


class BudgetCheck(NamedTuple):
    """One budget rule applied to one bucket (several rules may share a bucket key)."""

    key: str
    limit: int  # nano-dollars
    blocking: bool  # an overrun refuses the whole reservation (enforced rules)
    expires_at: float | None  # when the bucket may be forgotten (period end + grace); None for total


class Figures(NamedTuple):
    """A bucket's settled spend and live reservations, in nano-dollars."""

    spent: int
    reserved: int


class ReserveOutcome(NamedTuple):
    """``reserved`` is False when a blocking check was over; ``figures``/``over`` align with the checks."""

    reserved: bool
    figures: tuple[Figures, ...]
    over: tuple[bool, ...]


class RateCheck(NamedTuple):
    key: str
    limit: int
    window_seconds: int


class RateOutcome(NamedTuple):
    """``allowed`` is False when any check was over (then no window was counted); ``over`` aligns with the checks."""

    allowed: bool
    over: tuple[bool, ...]


class Bucket(NamedTuple):
    """A bucket a reservation was made on, kept in the ticket for settlement."""

    key: str
    expires_at: float | None


def unique_buckets(checks: Sequence[BudgetCheck]) -> tuple[Bucket, ...]:
    seen: dict[str, Bucket] = {}
    for check in checks:
        seen.setdefault(check.key, Bucket(check.key, check.expires_at))
    return tuple(seen.values())


class Ledger(abc.ABC):
    """Budget and rate state shared by whoever opens the same URL."""

    url: str = ""
    atomic_rate_and_reserve = False  # True when hit_and_reserve is one transaction (cheaper than two calls)
    # True when settling a ticket whose reserve failed on the client is safe and counts once (the
    # ledger cancels the failed reserve and retries failed settlements): a fail-open call then
    # still has its spend recorded.
    settles_failed_reserves = False

    @abc.abstractmethod
    def reserve(self, ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float) -> ReserveOutcome:
        """Atomically: if no blocking check is over, hold ``amount`` on every bucket until ``expires_at``."""

    @abc.abstractmethod
    def settle(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], actual: int, now: float) -> dict[str, Figures]:
        """Atomically drop the reservation (of ``reserved``) and add ``actual`` to every bucket; the figures after."""

    @abc.abstractmethod
    def release(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], now: float) -> None:
        """Drop the reservation without spending (the call did not run)."""

    @abc.abstractmethod
    def hit(self, checks: Sequence[RateCheck], now: float) -> RateOutcome:
        """Atomically: if no check is over, count one call in every window."""

    def hit_and_reserve(
        self, rates: Sequence[RateCheck], ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float
    ) -> tuple[RateOutcome, ReserveOutcome | None]:
        """:meth:`hit`, then (only if the rate allowed the call) :meth:`reserve`; the rate slot counts either way."""
        rate = self.hit(rates, now)
        if not rate.allowed:
            return rate, None
        return rate, self.reserve(ticket_id, amount, checks, expires_at, now)

    @abc.abstractmethod
    def first_alert(self, key: str, expires_at: float | None, now: float) -> bool:
        """True exactly once per key across everyone sharing the ledger."""

    @abc.abstractmethod
    def figures(self, key: str, now: float) -> Figures:
        """A bucket's current figures (reports, tests)."""

    def after_fork(self) -> None:
        """Recreate connections and locks in a forked child."""

    def close(self) -> None:
        """Release connections."""


class UnavailableLedger(Ledger):
    """Stands in for a ledger that could not even be opened: every operation raises the same error."""

    atomic_rate_and_reserve = True

    def __init__(self, error: LedgerError) -> None:
        self.error = error

    def _error(self) -> LedgerError:
        return type(self.error)(*self.error.args)  # a fresh one each time: re-raising one instance grows its traceback

    def reserve(self, ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float) -> ReserveOutcome:
        raise self._error()

    def settle(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], actual: int, now: float) -> dict[str, Figures]:
        raise self._error()

    def release(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], now: float) -> None:
        raise self._error()

    def hit(self, checks: Sequence[RateCheck], now: float) -> RateOutcome:
        raise self._error()

    def hit_and_reserve(
        self, rates: Sequence[RateCheck], ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float
    ) -> tuple[RateOutcome, ReserveOutcome | None]:
        raise self._error()

    def first_alert(self, key: str, expires_at: float | None, now: float) -> bool:
        raise self._error()

    def figures(self, key: str, now: float) -> Figures:
        raise self._error()
