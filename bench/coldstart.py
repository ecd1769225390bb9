"""Cold-start import cost of each Lambda handler: `python bench/coldstart.py [--runs 5]`.

Every handler's Lambda imports app.py; then, on its first call, the modules the handler
imports lazily (read from app.py's AST), plus boto3 (the composition root's session).
Vendor SDKs that adapters load on first use are timed on their own, because which one a
handler pays for depends on settings (paper vs alpaca broker, OpenAI vs rule scorer).

Each figure is the best of --runs fresh interpreters (`python -X importtime`), so it is
the import cost alone, with a warm file cache; a real cold start adds the Lambda init
(~100-250 ms) and a slower disk.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENDOR_SDKS = {
    "alpaca broker": ["alpaca.trading.client"],
    "alpaca market data": ["alpaca.data.historical"],
    "openai scorer": ["openai"],
    "twilio voice": ["twilio.rest"],
    "powertools batch": ["aws_lambda_powertools.utilities.batch"],
}


def handler_imports(app_py: Path) -> dict[str, list[str]]:
    """Handler name -> modules its body imports (the lazy imports a first call pays for)."""
    tree = ast.parse(app_py.read_text())
    handlers: dict[str, list[str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        if not any(
            isinstance(d, ast.Call)
            and isinstance(d.func, ast.Attribute)
            and isinstance(d.func.value, ast.Name)
            and d.func.value.id == "app"
            for d in node.decorator_list
        ):
            continue
        modules = []
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.module:
                modules.append(inner.module)
            elif isinstance(inner, ast.Import):
                modules.extend(alias.name for alias in inner.names)
        handlers[node.name] = modules
    return handlers


def import_ms(modules: list[str], before: list[str] | None = None) -> tuple[float, list]:
    """Milliseconds to import `modules` after `before` in a fresh interpreter, and the
    five slowest modules (self time) among them, from -X importtime."""
    setup = "".join(f"import {m};" for m in before or [])
    code = (
        setup
        + "import sys; print('@@', file=sys.stderr);"
        + "".join(f"import {m};" for m in modules)
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    after_marker = done.stderr.split("@@", 1)[1]
    rows = []
    for line in after_marker.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[12:].split("|")
        depth = len(name) - len(name.lstrip())  # nested imports are indented further
        rows.append((int(self_us), int(cumulative_us), name.strip(), depth))
    total_ms = sum(r[1] for r in rows if r[3] == 1) / 1000
    slowest = sorted(rows, key=lambda r: r[0], reverse=True)[:5]
    return total_ms, [(name, self_us / 1000) for self_us, _, name, _ in slowest]


def best_of(runs: int, modules: list[str], before: list[str] | None = None):
    results = [import_ms(modules, before) for _ in range(runs)]
    return min(results, key=lambda r: r[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    app_ms, app_slowest = best_of(args.runs, ["app"])
    print(f"{'import app (every handler)':40} {app_ms:8.1f} ms")
    print("   slowest:", ", ".join(f"{n} {ms:.1f}" for n, ms in app_slowest))
    print()
    print(f"{'handler: first call adds':40} {'ms':>8}   total with app")
    for name, modules in handler_imports(REPO / "app.py").items():
        lazy = sorted({*modules, "boto3"})
        ms, slowest = best_of(args.runs, lazy, before=["app"])
        print(f"{name:40} {ms:8.1f}   {app_ms + ms:8.1f} ms   ({', '.join(lazy)})")
    print()
    print(f"{'vendor SDK (adapter first use)':40} {'ms':>8}")
    for label, modules in VENDOR_SDKS.items():
        if importlib.util.find_spec(modules[0].split(".")[0]) is None:
            print(f"{label:40} {'not installed':>8}")
            continue
        ms, slowest = best_of(args.runs, modules, before=["app"])
        heavy = ", ".join(f"{n} {m:.0f}" for n, m in slowest[:3])
        print(f"{label:40} {ms:8.1f}   slowest: {heavy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
