"""The governor's way to its ledger: opened on first use, failures counted and logged once, fail mode applied.

Rate limits and budgets share one link, so a failure is handled the same way wherever it happens:
``GENOPS_FAIL_MODE=open`` lets the call go ahead (marked ``genops.ledger.status=unavailable``),
``closed`` blocks calls under enforced rules with ``BUDGET_RESERVATION_FAILED``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from genops_autoinstrument import semconv
from genops_autoinstrument.config.ledger_url import redact
from genops_autoinstrument.governance.ledger.base import Ledger, LedgerError, LedgerRefused, UnavailableLedger
from genops_autoinstrument.governance.outcomes import Outcome

if TYPE_CHECKING:
    from genops_autoinstrument.config import Settings

log = logging.getLogger("genops")

ATTR_LEDGER_STATUS = semconv.GENOPS_LEDGER_STATUS
ATTR_LEDGER_OPERATION = semconv.GENOPS_LEDGER_OPERATION


class LedgerLink:
    """The ledger of ``GENOPS_LEDGER_URL`` (or the one given), and what to do when it fails."""

    def __init__(self, settings: "Settings", ledger: Ledger | None = None, meter: Any = None) -> None:
        self.settings = settings
        self._ledger = ledger
        self._lock = threading.Lock()
        self._meter = meter
        self._counter: Any = None
        self._logged: set[str] = set()
        self.failures = 0  # also exported as the genops.ledger.failures counter
        _report_losses(ledger, self)

    @property
    def ledger(self) -> Ledger:
        """The ledger, opened on first use (opening never touches disk or network by itself).

        A ledger that cannot be named (:class:`LedgerError` from the factory) is replaced by one whose
        every operation fails with that error, so the fail mode decides as for any ledger failure.
        """
        if self._ledger is None:
            with self._lock:
                if self._ledger is None:
                    from genops_autoinstrument.governance.ledger.factory import open_ledger

                    try:
                        self._ledger = open_ledger(self.settings.ledger_url, self.settings.ledger_timeout_ms)
                    except LedgerError as error:  # e.g. no home folder for the default file: every call meets the fail mode
                        self._ledger = UnavailableLedger(error)
                    _report_losses(self._ledger, self)
        return self._ledger

    def bind_meter(self, meter: Any) -> None:
        """Record the failure counter through this meter (the engine's)."""
        self._meter = meter
        self._counter = None

    def failed(self, operation: str, error: BaseException) -> None:
        """Count a failed ledger operation; log the first of each kind."""
        self.failures += 1
        try:
            if self._counter is None and self._meter is not None:
                self._counter = self._meter.create_counter(semconv.METRIC_LEDGER_FAILURES, unit="{failure}", description="GenOps ledger operations that failed")
            if self._counter is not None:
                self._counter.add(1, {ATTR_LEDGER_OPERATION: operation})
        except Exception:  # pragma: no cover - telemetry must not break the decision
            pass
        # A refusal (an unsafe file, no home) is the same news on every operation: one line per process.
        key = f"refused:{error}" if isinstance(error, LedgerRefused) else f"{operation}:{type(error).__name__}"
        if key not in self._logged:
            self._logged.add(key)
            url = redact(self.settings.ledger_url) if self.settings.ledger_url else "the default SQLite ledger"
            action = "blocking calls under enforced budgets and rate limits" if self.settings.fail_mode == "closed" else "allowing calls"
            message = str(error) if isinstance(error, LedgerError) else type(error).__name__
            log.warning("GenOps ledger %s failed on %s (%s); GENOPS_FAIL_MODE=%s: %s", url, operation, message, self.settings.fail_mode, action)

    def refuse(self, operation: str, error: BaseException, attributes: dict, name: str, blocking: bool) -> list[Outcome]:
        """A failed check before the call: counted, then the fail mode's outcome for policy ``name``."""
        self.failed(operation, error)
        if self.settings.fail_mode == "closed" and blocking:
            message = f"GenOps could not reach its ledger to check {name}; GENOPS_FAIL_MODE=closed blocks the call"
            return [Outcome(semconv.RESULT_BLOCKED, name, semconv.REASON_BUDGET_RESERVATION_FAILED, message, "enforced")]
        attributes[ATTR_LEDGER_STATUS] = "unavailable"
        return []

    def after_fork(self) -> None:
        """A fresh lock and the ledger's own reconnection in a forked child."""
        self._lock = threading.Lock()
        if self._ledger is not None:
            self._ledger.after_fork()

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()


def _report_losses(ledger: Ledger | None, link: LedgerLink) -> None:
    """A ledger that retries settlements (Redis) reports each one it finally gives up as a failure
    (``settle_lost`` in ``genops.ledger.failures``)."""
    if ledger is not None and getattr(ledger, "on_lost", False) is None:
        ledger.on_lost = link.failed  # type: ignore[attr-defined]
