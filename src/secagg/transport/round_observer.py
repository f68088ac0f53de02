"""The network server's window on a round: the same :class:`RoundObserver` the simulator's
driver feeds, here filling the round's report and passing every event on to the operator's own
observer (``ServerOptions(observer=...)``)."""

from __future__ import annotations

import time

from secagg.protocol.messages import Round
from secagg.protocol.observer import NULL_OBSERVER, Observers, RoundObserver, ServerStep
from secagg.transport.report import RoundReport

__all__ = ["ReportObserver", "report_observer"]


class ReportObserver(RoundObserver):
    """Times the server's named steps (``reconstruct``, ``remove-masks``) into
    ``report.server_steps``, in seconds of wall time."""

    def __init__(self, report: RoundReport) -> None:
        self._report = report
        self._started: dict[ServerStep, float] = {}

    def server_begin(self, round_: Round, step: ServerStep) -> None:
        self._started[step] = time.perf_counter()

    def server_end(self, round_: Round, step: ServerStep) -> None:
        start = self._started.pop(step, None)
        if start is not None:
            spent = time.perf_counter() - start
            self._report.server_steps[step] = self._report.server_steps.get(step, 0.0) + spent


def report_observer(report: RoundReport, extra: RoundObserver | None) -> RoundObserver:
    """The observer a network round's session gets: the report's, plus the operator's."""
    mine = ReportObserver(report)
    return mine if extra is None or extra is NULL_OBSERVER else Observers(mine, extra)
