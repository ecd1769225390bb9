"""The local stand-ins for issue 13's schedules: the alert digest (every minute in AWS) and
the daily report (after the close in AWS; here once a day when `report_due` says so)."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from devstack.worker import Every

log = logging.getLogger(__name__)
DIGEST_EVERY_S = 60.0
REPORT_CHECK_EVERY_S = 300.0


def local_jobs(c: Any) -> list[Every]:
    from chalicelib import bootstrap
    from chalicelib.domain import utc_now
    from chalicelib.services.alerting import RoutingNotifier
    from chalicelib.services.daily_report import daily_report, report_due

    reported: set[date] = set()

    def flush_digests() -> None:
        if isinstance(c.notifier, RoutingNotifier):
            c.notifier.flush_digests()

    def report_when_due() -> None:
        day = report_due(utc_now())
        if day is None or day in reported:
            return
        result = daily_report(
            c.state_store,
            c.report_sink,
            day,
            notifier=c.notifier,
            journal=bootstrap.sheets_journal(c),
        )
        reported.add(day)
        log.info("daily report: %s", json.dumps(result))

    return [
        Every(DIGEST_EVERY_S, flush_digests, "alert-digests"),
        Every(REPORT_CHECK_EVERY_S, report_when_due, "daily-report"),
    ]
