"""The README's settings table, generated from the one Settings class so the two never drift.

.venv/bin/python scripts/settings_table.py            # print it
.venv/bin/python scripts/settings_table.py --write    # put it into README.md
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from chalicelib.settings import Settings


def settings_rows() -> list[tuple[str, str, str]]:
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            shown = "(secret; empty)" if not default.get_secret_value() else "(secret)"
        elif default is None:
            shown = "(unset)"
        elif default == "":
            shown = "(empty)"
        else:
            shown = f"`{default}`"
        rows.append((f"FLOWTRADER_{name.upper()}", shown, field.description or ""))
    return rows


def markdown_table() -> str:
    lines = ["| env var | default | meaning |", "|---|---|---|"]
    lines += [f"| `{env}` | {default} | {meaning} |" for env, default, meaning in settings_rows()]
    return "\n".join(lines)


README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def readme_with_table(readme: str) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


if __name__ == "__main__":
    if "--write" in sys.argv:
        README.write_text(readme_with_table(README.read_text()))
    else:
        print(markdown_table())
