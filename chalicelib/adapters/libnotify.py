"""Desktop pop-ups through libnotify's `notify-send` (Debian: libnotify-bin), for `make run`.

Built only when the binary is on PATH and not in Lambda (bootstrap). The pop-up is started
and not waited for, so a slow desktop never holds the worker; arguments are passed as a
list (no shell), so no alert text can run a command.
"""

from __future__ import annotations

import shutil
import subprocess

from chalicelib.services.notify import sms_text

BINARY = "notify-send"
URGENT = ("stopped_out", "failed", "drift")


def available() -> bool:
    return shutil.which(BINARY) is not None


def command(subject: str, message: str, event: str) -> list[str]:
    """notify-send's argv (`--urgency`, `--app-name`, summary, body)."""
    urgency = "critical" if event in URGENT else "normal"
    body = sms_text(message, 500)
    return [BINARY, f"--urgency={urgency}", "--app-name=flowtrader", "--", subject, body]


class DesktopNotifier:
    last: subprocess.Popen[bytes] | None = None  # the latest pop-up's process

    def notify(self, subject: str, message: str, *, event: str = "info") -> None:
        self.last = subprocess.Popen(
            command(subject, message, event),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
