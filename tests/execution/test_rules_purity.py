"""chalicelib/rules stays pure: no I/O libraries, vendor SDKs or clock reads."""

from __future__ import annotations

import ast
import pathlib

RULES = pathlib.Path(__file__).resolve().parents[2] / "chalicelib" / "rules"
FORBIDDEN_IMPORTS = {
    "boto3",
    "botocore",
    "requests",
    "httpx",
    "urllib3",
    "pandas",
    "alpaca",
    "exchange_calendars",
    "aws_lambda_powertools",
    "socket",
    "subprocess",
    "zoneinfo",
}
ALLOWED_CHALICELIB = ("chalicelib.domain", "chalicelib.ports", "chalicelib.rules")
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "utc_now"}


def _modules():
    return sorted(RULES.rglob("*.py"))


def test_rules_import_only_stdlib_numpy_domain_and_rules():
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                if root in FORBIDDEN_IMPORTS or (
                    root == "chalicelib" and not name.startswith(ALLOWED_CHALICELIB)
                ):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_rules_never_read_the_clock():
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CLOCK_CALLS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"datetime", "date", "time"}
            ):
                offenders.append(f"{path.name}:{node.lineno}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "utc_now"
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
