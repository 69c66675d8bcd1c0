"""``GENOPS_SUMMARY=1``: a small table of calls, tokens and cost printed to stderr at exit."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Mapping, TextIO

from genops_autoinstrument import lifecycle
from genops_autoinstrument.pricing.usage import Usage


@dataclass
class _Row:
    calls: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0


class Summary:
    """Accumulates per-model and per-attribution totals of this process."""

    _installed: "Summary | None" = None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._printed = False
        self.by_model: dict[tuple[str, str], _Row] = {}
        self.by_attribution: dict[tuple[str, str], _Row] = {}

    @classmethod
    def install(cls) -> "Summary":
        if cls._installed is None:
            cls._installed = cls()
            lifecycle.at_exit(cls._installed.print, lifecycle.EXIT_SUMMARY)
        return cls._installed

    @classmethod
    def reset_after_fork(cls) -> None:
        """A forked child starts its own table (the parent's exit handler prints only in the parent)."""
        cls._installed = None

    def add(self, provider: str, model: str | None, attribution: Mapping[str, str], usage: Usage | None, cost: float | None, failed: bool = False) -> None:
        keys = [(provider, model or "?")]
        with self._lock:
            rows = [self.by_model.setdefault(keys[0], _Row())]
            rows += [self.by_attribution.setdefault((key, value), _Row()) for key, value in attribution.items()]
            for row in rows:
                row.calls += 1
                row.failed += int(failed)
                if usage is not None:
                    row.input_tokens += usage.input_tokens or 0
                    row.output_tokens += usage.output_tokens or 0
                if cost is not None:
                    row.cost += cost
                elif not failed:
                    row.unpriced += 1

    def render(self) -> str:
        lines = ["", "GenOps summary"]
        header = f"  {'':<40} {'calls':>6} {'failed':>6} {'in tok':>9} {'out tok':>9} {'cost USD':>12} {'unpriced':>8}"

        def table(title: str, rows: Mapping[tuple[str, str], _Row]) -> None:
            lines.append(f" {title}")
            lines.append(header)
            for (a, b), row in sorted(rows.items()):
                label = f"{a} {b}" if title == "by model" else f"{a}={b}"
                lines.append(
                    f"  {label[:40]:<40} {row.calls:>6} {row.failed:>6} {row.input_tokens:>9} {row.output_tokens:>9} {row.cost:>12.6f} {row.unpriced:>8}"
                )

        table("by model", self.by_model)
        if self.by_attribution:
            table("by attribution", self.by_attribution)
        total = sum(row.cost for row in self.by_model.values())
        lines.append(f" total cost: ${total:.6f} over {sum(r.calls for r in self.by_model.values())} calls")
        return "\n".join(lines) + "\n"

    def print(self, stream: TextIO | Any = None) -> None:
        from genops_autoinstrument.engine.deferred import deferred_queue

        deferred_queue.flush(1.0)  # the calls whose completion is still queued belong in the table
        if not self.by_model or os.getpid() != self._pid or self._printed:
            return
        self._printed = True
        try:
            (stream or sys.stderr).write(self.render())
        except Exception:  # pragma: no cover - stderr closed at exit
            pass


lifecycle.on_fork_child(Summary.reset_after_fork, lifecycle.FORK_SUMMARY)
