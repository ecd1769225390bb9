"""The README is the product's front door: its commands and tables must match the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _settings_table_module():
    spec = importlib.util.spec_from_file_location(
        "settings_table", ROOT / "scripts/settings_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_opens_with_the_two_commands():
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:15])

    assert "make run" in first_screen
    assert "make test" in first_screen


def test_readme_settings_table_matches_the_settings_class():
    readme = (ROOT / "README.md").read_text()

    assert _settings_table_module().readme_with_table(readme) == readme, (
        "README settings table is stale: run .venv/bin/python scripts/settings_table.py --write"
    )


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci/run").read_text()
