"""infra/deploy.py against moto's server: the infra stack, config.json, the secret, destroy.

The app stack (chalice package -> CloudFormation with the SAM transform) cannot be created
in moto, which has no SAM transform; tests/infra/test_package.py checks that template.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import boto3
import pytest

from infra import deploy as infra_deploy
from infra.deploy import Target, deploy, destroy, seed_secret

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def target(aws, tmp_path: Path) -> Target:
    """A stage `ci` whose .chalice/ is a copy, so the repo's config.json stays untouched."""
    shutil.copytree(
        REPO / ".chalice",
        tmp_path / ".chalice",
        ignore=shutil.ignore_patterns("deployments", "deployed"),
    )
    return Target(
        stage="ci", region="us-east-1", endpoint_url=aws.endpoint_url, project_dir=tmp_path
    )


def _add_ci_stage(target: Target) -> None:
    config = json.loads(target.config_path.read_text())
    config["stages"]["ci"] = json.loads(json.dumps(config["stages"]["dev"]))
    config["stages"]["ci"]["environment_variables"] = {"FLOWTRADER_STAGE": "ci"}
    target.config_path.write_text(json.dumps(config))


def _stage_env(target: Target) -> dict[str, str]:
    return json.loads(target.config_path.read_text())["stages"]["ci"]["environment_variables"]


def test_deploy_writes_the_stack_outputs_into_the_stage_config(target: Target, capsys):
    _add_ci_stage(target)
    started = time.perf_counter()
    outputs = deploy(target, embedded_aws=True, skip_app=True)
    print(f"infra stack on moto: {time.perf_counter() - started:.2f} s")

    env = _stage_env(target)
    assert env["FLOWTRADER_ALERTS_TABLE"] == "flowtrader-ci-alerts"
    assert env["FLOWTRADER_STATE_TABLE"] == "flowtrader-ci-state"
    assert env["FLOWTRADER_QUEUE_URL"] == outputs["AlertsQueueUrl"]
    assert env["FLOWTRADER_QUEUE_URL"].endswith("/flowtrader-ci-alerts")
    assert env["FLOWTRADER_TOPIC_ARN"].endswith(":flowtrader-ci-notifications")
    assert env["FLOWTRADER_REPORTS_BUCKET"].startswith("flowtrader-ci-reports-")
    assert env["FLOWTRADER_STAGE"] == "ci"
    other = json.loads(target.config_path.read_text())["stages"]["dev"]
    assert "FLOWTRADER_ALERTS_TABLE" not in other["environment_variables"]


def test_queue_visibility_is_six_worker_timeouts(target: Target):
    _add_ci_stage(target)
    outputs = deploy(target, embedded_aws=True, skip_app=True)
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=outputs["AlertsQueueUrl"], AttributeNames=["VisibilityTimeout"]
    )["Attributes"]
    config = json.loads(target.config_path.read_text())
    assert int(attrs["VisibilityTimeout"]) == 6 * infra_deploy.worker_timeout_s(config, "ci")


# moto's UpdateStack parses conditional resources whose condition is false, and warns.
@pytest.mark.filterwarnings("ignore:Tried to parse AWS..SNS..Subscription")
def test_redeploy_updates_the_same_stack(target: Target):
    _add_ci_stage(target)
    first = deploy(target, embedded_aws=True, skip_app=True)
    second = deploy(target, embedded_aws=True, skip_app=True)
    assert second["AlertsQueueArn"] == first["AlertsQueueArn"]
    stacks = boto3.client("cloudformation").describe_stacks(StackName="flowtrader-ci-infra")
    assert stacks["Stacks"][0]["StackStatus"].endswith("_COMPLETE")


def test_destroy_removes_the_stack_and_the_stage_environment(target: Target):
    _add_ci_stage(target)
    outputs = deploy(target, embedded_aws=True, skip_app=True)
    s3 = boto3.client("s3")
    s3.put_object(Bucket=outputs["ReportsBucketName"], Key="pnl/2026-11-26.csv", Body=b"x")

    destroy(target)

    names = [
        s["StackName"]
        for s in boto3.client("cloudformation").list_stacks(
            StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"]
        )["StackSummaries"]
    ]
    assert "flowtrader-ci-infra" not in names
    assert "FLOWTRADER_ALERTS_TABLE" not in _stage_env(target)
    tables = boto3.client("dynamodb").list_tables()["TableNames"]
    assert "flowtrader-ci-alerts" not in tables


def test_seeding_generates_passphrase_and_token_once_and_keeps_set_keys(aws):
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(
        Name="flowtrader-ci/app",
        SecretString=json.dumps({"webhook_passphrase": "", "alpaca_api_key": "AKSET"}),
    )["ARN"]

    assert sorted(seed_secret(sm, arn)) == ["api_token", "webhook_passphrase"]
    first = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
    assert seed_secret(sm, arn) == []
    second = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])

    assert second == first
    assert first["alpaca_api_key"] == "AKSET"
    assert len(first["webhook_passphrase"]) >= 24
    assert set(infra_deploy.SECRET_KEYS) <= set(first)


def test_set_secret_rejects_unknown_keys(aws):
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(Name="flowtrader-ci/app", SecretString="{}")["ARN"]
    infra_deploy.set_secret_key(sm, arn, "alpaca_api_key", "AKNEW")
    assert json.loads(sm.get_secret_value(SecretId=arn)["SecretString"]) == {
        "alpaca_api_key": "AKNEW"
    }
    with pytest.raises(infra_deploy.DeployError, match="not a setting"):
        infra_deploy.set_secret_key(sm, arn, "alpaca_api_kye", "typo")


def test_destroying_prod_needs_confirmation(capsys):
    assert infra_deploy.main(["destroy", "--stage", "prod", "--region", "us-east-1"]) == 1
    assert "--yes" in capsys.readouterr().err


def test_policy_files_are_generated_and_scoped_to_their_stage():
    """`python -m infra.deploy policies` wrote them; no statement reaches another stage."""
    for stage in ("dev", "prod"):
        committed = json.loads((REPO / ".chalice" / f"policy-{stage}.json").read_text())
        assert committed == infra_deploy.policy_document(stage)
        for statement in committed["Statement"]:
            for arn in _as_list(statement["Resource"]):
                assert f"flowtrader-{stage}" in arn, arn
            assert not any(a == "*" or a.endswith(":*") for a in _as_list(statement["Action"]))


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_command_line_deploys_and_destroys_a_stage(target: Target, capsys):
    _add_ci_stage(target)
    common = ["--stage", "ci", "--region", "us-east-1", "--endpoint-url", target.endpoint_url]
    common += ["--project-dir", str(target.project_dir)]

    assert infra_deploy.main(["deploy", "--skip-app", "--embedded-aws", *common]) == 0
    assert _stage_env(target)["FLOWTRADER_STATE_TABLE"] == "flowtrader-ci-state"
    assert infra_deploy.main(["destroy", *common]) == 0
    assert "stage ci destroyed" in capsys.readouterr().out
    assert "FLOWTRADER_STATE_TABLE" not in _stage_env(target)
