"""`chalice package` builds the Lambda bundle the app stack deploys, and infra/deploy.py
turns its SAM template into one stage's template.

Slow on a clean checkout: chalice pip-downloads manylinux wheels for every runtime
requirement (about 3 min with alpaca-py's pandas; seconds once .chalice/deployments caches
the build). No AWS is involved.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from infra.deploy import GATEWAY_RESPONSES, policy_document, prepare_app_template, slim_package

REPO = Path(__file__).resolve().parents[2]
# Lambda takes a zip of at most 50 MB uploaded directly (we upload through S3, where only the
# 250 MB unzipped limit applies). Was 40 MiB; issue 13's twilio (with aiohttp), gspread and
# google-auth and openpyxl add about 6 MB (46 MB with ibind's pycryptodome too).
ZIP_LIMIT_BYTES = 50_000_000
DEV_ONLY = {
    "pytest", "_pytest", "moto", "sklearn", "scikit_learn", "hypothesis", "backtesting",
    "bokeh", "ruff", "cfnlint", "boto3", "botocore", "tests", "backtest", "devstack", "bench",
    "infra",
}  # fmt: skip
STAGE_OUTPUTS = {
    "AlertsQueueArn": "arn:aws:sqs:us-east-1:111122223333:flowtrader-dev-alerts",
    "ArtifactsBucketName": "flowtrader-dev-artifacts-111122223333",
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("chalice") / "dev"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("chalice")), "package", "--stage", "dev", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    print(f"chalice package: {time.perf_counter() - started:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stdout + done.stderr


@pytest.fixture(scope="module")
def sam(package) -> dict:
    return json.loads((package[0] / "sam.json").read_text())


def _functions(template: dict) -> dict[str, dict]:
    return {
        k: v["Properties"]
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::Serverless::Function"
    }


def _missing_distributions(bundle: zipfile.ZipFile) -> set[str]:
    """requirements.txt and, recursively, what each bundled distribution's METADATA requires
    (markers evaluated for this Python, the runtime's), minus what the zip holds."""
    from email.parser import Parser

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    metadata = {
        canonicalize_name(name.split("/", 1)[0].split("-", 1)[0]): name
        for name in bundle.namelist()
        if name.count("/") == 1 and name.endswith(".dist-info/METADATA")
    }
    todo = [
        Requirement(line.split("#", 1)[0].strip())
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    seen: set[str] = set()
    missing: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        if name not in metadata:
            missing.add(name)
            continue
        headers = Parser().parsestr(bundle.read(metadata[name]).decode())
        todo.extend(Requirement(r) for r in headers.get_all("Requires-Dist") or [])
    return missing - {"boto3", "botocore", "s3transfer"}  # in the Lambda runtime


def test_every_runtime_requirement_was_installable_for_lambda(package):
    """Chalice only warns (and, building from its cache, not even that) when a requirement
    has no wheel for the Lambda runtime's glibc; the zip must hold every distribution."""
    with zipfile.ZipFile(package[0] / "deployment.zip") as bundle:
        missing = _missing_distributions(bundle)
    assert not missing, (
        f"not in the Lambda zip: {sorted(missing)}. Chalice found no wheel for the Lambda "
        "runtime (python3.11: glibc 2.26, manylinux2014); pin a release that has one in "
        "requirements.txt, e.g. numpy==2.2.6 (docs/deploy.md, Known issues)\n" + package[1]
    )


def test_package_is_under_40_mb_zipped(package):
    size = (package[0] / "deployment.zip").stat().st_size
    print(f"deployment.zip: {size / 1e6:.1f} MB")
    assert size < ZIP_LIMIT_BYTES


def test_package_holds_no_dev_only_packages(package):
    with zipfile.ZipFile(package[0] / "deployment.zip") as bundle:
        top = {name.split("/", 1)[0] for name in bundle.namelist()}
    tops = {t.split("-", 1)[0].removesuffix(".py").lower() for t in top}
    assert not tops & DEV_ONLY, sorted(tops & DEV_ONLY)
    assert {"app.py", "chalicelib"} <= top


def test_every_handler_is_in_the_template(sam):
    from app import app

    expected = {f"app.{source.handler_string.split('.')[-1]}" for source in app.event_sources}
    expected |= {f"app.{fn.handler_string.split('.')[-1]}" for fn in app.pure_lambda_functions}
    if app.routes:
        expected.add("app.app")
    handlers = {props["Handler"] for props in _functions(sam).values()}
    assert expected <= handlers, sorted(expected - handlers)


def test_functions_run_with_the_stage_policy_not_an_autogenerated_one(sam):
    roles = [r["Properties"] for r in sam["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert roles
    for role in roles:
        assert [p["PolicyDocument"] for p in role["Policies"]] == [policy_document("dev")]


def test_stage_template_wires_the_queue_and_partial_batch_failures(sam):
    template = prepare_app_template(sam, "dev", STAGE_OUTPUTS, "s3://bucket/code/x.zip")
    functions = _functions(template)
    sqs_events = [
        (props["FunctionName"], event["Properties"])
        for props in functions.values()
        for event in props.get("Events", {}).values()
        if event["Type"] == "SQS"
    ]
    assert sqs_events == [
        (
            "flowtrader-dev-process_alerts",
            {
                "Queue": STAGE_OUTPUTS["AlertsQueueArn"],
                "BatchSize": 10,
                "MaximumBatchingWindowInSeconds": 0,
                "ScalingConfig": {"MaximumConcurrency": 2},
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        )
    ]
    names = {props["FunctionName"] for props in functions.values()}
    assert "flowtrader-dev" in names  # the API handler, as the alarms expect
    assert all(props["CodeUri"] == "s3://bucket/code/x.zip" for props in functions.values())
    for logical_id, props in functions.items():
        log_group = template["Resources"][f"{logical_id}LogGroup"]["Properties"]
        assert log_group["LogGroupName"] == f"/aws/lambda/{props['FunctionName']}"
        assert f"{logical_id}LogGroup" in template["Resources"][logical_id]["DependsOn"]


def test_stage_template_gives_the_api_fixed_gateway_responses(sam):
    """API Gateway's default for an unknown route echoes the Authorization header."""
    template = prepare_app_template(sam, "dev", STAGE_OUTPUTS, "s3://bucket/code/x.zip")
    apis = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Api"]
    assert apis
    for api in apis:
        definition = api["Properties"]["DefinitionBody"]
        assert definition["x-amazon-apigateway-gateway-responses"] == GATEWAY_RESPONSES


def test_stage_template_passes_cfn_lint(sam, tmp_path: Path):
    """cfn-lint expands the SAM transform, so this validates what CloudFormation will see."""
    template = prepare_app_template(sam, "dev", STAGE_OUTPUTS, "s3://bucket/code/x.zip")
    path = tmp_path / "app.json"
    path.write_text(json.dumps(template))
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_slimming_drops_bundled_test_suites_only(package, tmp_path: Path):
    slim = tmp_path / "deployment.zip"
    shutil.copy(package[0] / "deployment.zip", slim)
    before, after = slim_package(slim)
    print(f"slimmed deployment.zip: {before / 1e6:.1f} -> {after / 1e6:.1f} MB")
    with zipfile.ZipFile(package[0] / "deployment.zip") as full, zipfile.ZipFile(slim) as small:
        dropped = set(full.namelist()) - set(small.namelist())
        assert small.testzip() is None
    assert all("/tests/" in name for name in dropped)
    assert after <= before
