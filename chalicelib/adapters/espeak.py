"""Spoken alerts through espeak-ng (Debian: espeak-ng), for `make run`.

Built only when the binary is on PATH and not in Lambda (bootstrap). Speaking is started and
not waited for; the text is passed as an argument after `--` (no shell). `render_wav` writes
the same speech to a file (`espeak-ng -w`), which is how the tests hear it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from chalicelib.services.notify import sms_text

BINARY = "espeak-ng"
SPEAK_CHARS = 200
WORDS_PER_MINUTE = 165


def available() -> bool:
    return shutil.which(BINARY) is not None


def spoken_text(message: str) -> str:
    """The first line, without symbols a voice reads out oddly (· → comma, @ → at)."""
    text = sms_text(message, SPEAK_CHARS)
    for symbol, said in (("·", ","), ("@", " at "), ("−", "minus "), ("$", " dollars ")):
        text = text.replace(symbol, said)
    return " ".join(text.split())


def command(text: str, wav: Path | None = None) -> list[str]:
    argv = [BINARY, "-s", str(WORDS_PER_MINUTE)]
    if wav is not None:
        argv += ["-w", str(wav)]
    return [*argv, "--", text]


def render_wav(text: str, wav: Path, timeout_s: float = 30.0) -> None:
    """Speak `text` into the WAV file `wav` (waits for espeak-ng)."""
    subprocess.run(command(text, wav), check=True, timeout=timeout_s, capture_output=True)


class SpokenNotifier:
    last: subprocess.Popen[bytes] | None = None  # the latest speech's process

    def notify(self, subject: str, message: str, *, event: str = "info") -> None:
        self.last = subprocess.Popen(
            command(spoken_text(message)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
